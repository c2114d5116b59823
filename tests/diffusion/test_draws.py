"""Where random numbers are drawn (diffusion.processes.base.drawing): a CPU generator draws on
the CPU for work on the CPU, exactly as before (the same numbers, no extra draw); work on a GPU
draws from a generator on the GPU (tests/diffusion/test_cuda.py, run on a GPU machine by
benchmarks/gpu_check.sh).

The broken versions these catch: a CPU run that seeds a second generator (its stream would
move by one draw and every CPU result would change), a CPU checkpoint that stores a GPU
state, and a DIFFLAB_DRAWS_ON_CPU that reads any value as on.
"""

from __future__ import annotations

import pytest
import torch
from engine_helpers import SMOKE

from diffusion.processes.base import device_generator_state, drawing, randn
from diffusion.settings import draws_on_cpu
from diffusion.training.train import _Trainer


def test_cpu_work_draws_from_the_generator_itself() -> None:
    gen = torch.Generator().manual_seed(7)
    before = gen.get_state()
    got, dev = drawing(gen, "cpu")
    assert got is gen and dev == torch.device("cpu")
    assert torch.equal(gen.get_state(), before)  # no seeding draw
    assert drawing(None, "cpu") == (None, torch.device("cpu"))
    a = randn((3, 4), torch.Generator().manual_seed(7), torch.device("cpu"))
    b = torch.randn((3, 4), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert torch.equal(a, b)  # the CPU stream, unchanged


def test_a_cpu_checkpoint_keeps_no_gpu_generator(tmp_path) -> None:
    trainer = _Trainer(SMOKE, tmp_path, torch.device("cpu"), None, None)
    trainer.start_clock()
    trainer.advance()
    assert trainer.state(False)["rng_device"] is None
    assert device_generator_state(trainer.gen, "cpu") is None


@pytest.mark.parametrize(
    ("value", "on"), [("1", True), ("yes", True), ("TRUE", True), ("0", False), ("", False)]
)
def test_draws_on_cpu_setting(value: str, on: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFFLAB_DRAWS_ON_CPU", value)
    assert draws_on_cpu() is on

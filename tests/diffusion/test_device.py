"""Device choice: cuda when present, else cpu; mps refused with a reason (float64 engine)."""

import pytest
import torch

from diffusion.config import ConfigError
from diffusion.device import pick_device
from diffusion.presets import load_config


def test_auto_picks_cuda_when_present_else_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("auto").type == expected
    assert pick_device(None).type == expected


def test_unavailable_or_unknown_devices_are_refused() -> None:
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            pick_device("cuda:1")
    with pytest.raises(ConfigError, match="float64"):
        pick_device("mps")
    with pytest.raises(ConfigError, match="auto, cpu or cuda"):
        pick_device("tpu")


def test_config_refuses_mps_before_any_work() -> None:
    with pytest.raises(ConfigError, match="float64") as info:
        load_config("swissroll-smoke", ["train.device=mps"])
    assert "device" in info.value.field


_SUBNORMAL_PROBE = """
import torch
{setup}
torch.set_num_threads(2)
a = torch.full((256, 256), 1e-39)  # float32 subnormals
b = torch.ones(256, 256)
# with the mode on in every thread that computes (the pool starts here), a subnormal input
# counts as zero: no row of the product, no element of a * 3 is nonzero
print(int(((a @ b) != 0).sum()), int((a * 3 != 0).sum()))
"""


def _probe(setup: str) -> tuple[int, int]:
    import subprocess
    import sys

    code = _SUBNORMAL_PROBE.format(setup=setup)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    mm, mul = out.stdout.split()
    return int(mm), int(mul)


def test_pick_device_flushes_subnormals_in_the_threads_of_the_run() -> None:
    """A run picks its device before it computes (diffusion.training.train, inference), so
    the intra-op threads started later inherit the mode. The broken version this catches:
    pick_device leaving the CPU's default mode (the probe without setup shows the products
    of subnormals stay nonzero on this CPU)."""
    if _probe("pass") == (0, 0):
        pytest.skip("this CPU flushes subnormals by default")
    assert _probe("from diffusion.device import pick_device; pick_device('cpu')") == (0, 0)


def test_worker_threads_flush_subnormals_before_the_pool_starts() -> None:
    """A pool process sets the mode with its thread count, before its first job computes
    (worker.threads.apply); without it both counts are 65,536."""
    setup = (
        "import os; os.environ['DIFFLAB_WORKER_CONCURRENCY'] = '1'\n"
        "from worker import threads; threads.threads_per_job = lambda c: 2; threads.apply()"
    )
    assert _probe(setup) == (0, 0)

"""The lab on a GPU: skipped without CUDA (the CI machines have none); benchmarks/gpu_check.sh
runs this file on a lent GPU machine before its measurements.

The broken versions these catch:
- work on a GPU that still draws its noise on the CPU (the generator's device is checked);
- a GPU generator seeded afresh on every call (two calls must share one stream), or from
  anything but the seed (two generators of one seed must give the same numbers);
- a resumed GPU run that does not restore the GPU generator (its next steps would draw other
  noise, and its weights would not match the uninterrupted run's); the run also takes its
  batches through pinned memory and its p(t) from the GPU copy (`to_device`, `TSampler.probs`);
- DIFFLAB_DRAWS_ON_CPU ignored;
- bf16 that does not autocast on CUDA, or that hands bf16 on to the bound;
- a chain that is not reproducible from its seed on the GPU.
"""

from __future__ import annotations

import pytest
import torch
from engine_helpers import SMOKE

from diffusion.chains.sampling import sample_chain
from diffusion.evaluation.bound import step_draws, step_terms
from diffusion.model import DiffusionModel
from diffusion.presets import PRESETS
from diffusion.processes.base import drawing, randn
from diffusion.training.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")
RUN = SMOKE.with_overrides(["train.t_sampling=importance"])  # p(t) kept on the GPU


def test_gpu_work_draws_on_the_gpu_from_the_seed() -> None:
    a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    gen, dev = drawing(a, CUDA)
    assert gen.device.type == "cuda" and dev.type == "cuda"
    assert drawing(a, CUDA)[0] is gen  # one stream per CPU generator and device
    x, y = randn((4, 3), a, CUDA), randn((4, 3), b, CUDA)
    assert x.device.type == "cuda" and torch.equal(x, y)  # the same seed, the same numbers
    probe = torch.Generator().manual_seed(5)
    torch.randint(0, 2**63 - 1, (1,), generator=probe)
    assert torch.equal(a.get_state(), probe.get_state())  # one seeding draw, then the GPU's


def test_draws_on_cpu_keeps_the_cpu_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFFLAB_DRAWS_ON_CPU", "1")
    gen = torch.Generator().manual_seed(5)
    assert drawing(gen, CUDA) == (gen, torch.device("cpu"))
    x = randn((4, 3), gen, CUDA)
    want = torch.randn((4, 3), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert x.device.type == "cuda" and torch.equal(x.cpu(), want)


def _weights(run_dir) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ckpt["rng_device"] is not None  # the GPU generator travels with the checkpoint
    return {f"m.{k}": v for k, v in ckpt["model"].items()}


def test_a_resumed_gpu_run_goes_on_with_the_same_draws(tmp_path) -> None:
    train(RUN, tmp_path / "straight", device="cuda")
    calls = {"n": 0}

    def stop_at_half() -> bool:
        calls["n"] += 1
        return calls["n"] > RUN.train.steps // 2

    assert train(RUN, tmp_path / "resumed", should_stop=stop_at_half, device="cuda").step == 12
    train(RUN, tmp_path / "resumed", device="cuda")
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    for key in a:  # GPU kernels may sum in another order: equal to rounding
        assert torch.allclose(a[key], b[key], rtol=1e-5, atol=1e-7), key


def test_bf16_autocasts_on_cuda() -> None:
    cfg = PRESETS["cifar10-unet"].with_overrides(
        ["train.precision=bf16", "diffusion.T=10", "diffusion.J=0"]
    )
    torch.manual_seed(0)
    model = DiffusionModel(cfg, (3, 16, 16), "images").to(CUDA)
    seen: list[torch.dtype] = []
    for m in model.net.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    x0 = torch.randn(4, 3, 16, 16, dtype=torch.float64, device=CUDA)
    t, noise, weight = step_draws(model, x0, torch.Generator().manual_seed(1))
    k, kl = step_terms(model, x0, t, noise, weight)
    assert set(seen) == {torch.bfloat16}
    assert k.dtype == kl.dtype == torch.float64 and bool(torch.isfinite(k).all())


def test_a_gpu_chain_is_reproducible_from_its_seed() -> None:
    cfg = PRESETS["cifar10-unet"].with_overrides(["diffusion.T=20", "diffusion.J=0"])
    torch.manual_seed(0)
    model = DiffusionModel(cfg, (3, 16, 16), "images").to(CUDA).eval()
    a = sample_chain(model, 3, torch.Generator().manual_seed(9), CUDA).x0
    b = sample_chain(model, 3, torch.Generator().manual_seed(9), CUDA).x0
    assert a.device.type == "cuda" and a.shape == (3, 3, 16, 16)
    assert bool(torch.isfinite(a).all()) and torch.equal(a, b)

"""benchmarks/speed_floor.py: the minimal chains sample the lab's kernels, and the paper-loss
loop runs (issue 14's report-only reference rows).

Each minimal step is checked against the lab's kernel for the same input (mean and standard
deviation from noise 0 and 1; the Bernoulli probability), on a network with weights moved
away from their near-zero start so that the outputs matter; and the minimal chain must give
the network the same step inputs, in the same order, as the lab's chain.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks import speed_floor as floor  # noqa: E402
from benchmarks.speed_engine import _trainer_model  # noqa: E402
from diffusion.chains.posterior_chains import binary_inpaint_chain  # noqa: E402
from diffusion.chains.reverse import gaussian_reverse, model_reverse  # noqa: E402
from diffusion.chains.sampling import sample_chain  # noqa: E402
from diffusion.presets import PRESETS  # noqa: E402


def _model(preset: str, *overrides: str):
    model, _ = _trainer_model(PRESETS[preset].with_overrides(list(overrides)))
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.3)
    return model


def _steps_seen(model, fn) -> list[int]:
    """The basis row given to the network at each call of fn (as its step t)."""
    table, seen = model.basis.table(), []

    def hook(module, args):
        g = args[1][0].float()
        seen.append(int((table - g).abs().sum(1).argmin()) + 1)

    h = model.net.register_forward_pre_hook(hook)
    try:
        fn()
    finally:
        h.remove()
    return seen


@pytest.mark.parametrize("steps", [None, 4])
def test_gaussian_step_is_the_lab_kernel(steps) -> None:
    model = _model("swissroll-smoke", "train.batch_size=16")
    rev = gaussian_reverse(model)
    grid = rev.respaced(steps).steps
    levels = floor.gaussian_levels(model, steps)
    assert [lv[0] for lv in levels] == grid[1:]
    strided = sum(1 for a, b in zip(grid[1:-1], grid[2:], strict=True) if b > a + 1)
    assert strided > 0 if steps else strided == 0  # a strided chain with strided steps
    x = torch.randn((64, *model.shape), generator=torch.Generator().manual_seed(1))
    for i, level in enumerate(levels, start=1):
        t, s = grid[i], grid[i - 1]
        lab = rev.step(x.double(), t, s)
        y = model.net_output(x, t).float()
        mean = floor.gaussian_update(x, y, level, torch.zeros_like(x))
        sigma = floor.gaussian_update(x, y, level, torch.ones_like(x)) - mean
        torch.testing.assert_close(mean.double(), lab.mean, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(sigma.double(), lab.var.sqrt(), rtol=1e-4, atol=1e-6)
    gen = torch.Generator().manual_seed(0)
    n = 8
    run = floor.minimal_gaussian_chain(model, n, gen, steps)
    lab_steps = _steps_seen(model, lambda: sample_chain(model, n, gen, steps=steps))
    assert _steps_seen(model, run) == lab_steps == grid[1:][::-1]
    assert run().shape == (n, *model.shape)


def test_gaussian_draws_have_the_kernel_moments() -> None:
    """Over many draws of one step the sample mean and variance are the kernel's."""
    model = _model("swissroll-smoke", "train.batch_size=16")
    rev = gaussian_reverse(model)
    levels = floor.gaussian_levels(model)
    level = levels[len(levels) // 2]
    t = level[0]
    x = torch.tensor([[0.3, -0.7]]).expand(200_000, 2).contiguous()
    gen = torch.Generator().manual_seed(5)
    y = model.net_output(x, t).float()
    draws = floor.gaussian_update(x, y, level, torch.randn(x.shape, generator=gen)).double()
    lab = rev.kernel(x[:1].double(), t)
    torch.testing.assert_close(
        draws.mean(0), lab.mean[0], rtol=0, atol=4 * lab.var[0].sqrt().max() / 400
    )
    torch.testing.assert_close(draws.var(0), lab.var[0], rtol=0.02, atol=0)


def test_binary_step_is_the_lab_kernel() -> None:
    model = _model("heartbeat-smoke", "train.batch_size=16")
    rev = model_reverse(model)
    levels = floor.binary_levels(model)
    gen = torch.Generator().manual_seed(2)
    x = torch.bernoulli(torch.full((32, *model.shape), 0.4), generator=gen)
    for level in levels:
        t = level[0]
        z = model.net_output(x, t).float()[..., 0]
        torch.testing.assert_close(
            floor.binary_prob(x, z, level).double(),
            rev.kernel(x.double(), t).p,
            rtol=1e-5,
            atol=1e-6,
        )
    d = torch.full((4, *model.shape), 0.5, dtype=torch.float64)
    d[:, :5] = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0])
    run = floor.minimal_binary_chain(model, d, gen)
    lab_steps = _steps_seen(model, lambda: binary_inpaint_chain(rev, d, generator=gen))
    assert _steps_seen(model, run) == lab_steps == list(range(model.T, 0, -1))
    out = run()
    assert torch.equal(out[:, :5], d[:, :5].float()) and set(out.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="d in"):
        floor.minimal_binary_chain(model, d * 0.9, gen)


@pytest.mark.parametrize("preset", ["swissroll-smoke", "heartbeat-smoke"])
def test_paper_loss_loop_runs(preset: str, tmp_path: Path) -> None:
    from benchmarks.speed_engine import BareLoop
    from diffusion.training.train import _Trainer

    trainer = _Trainer(
        PRESETS[preset].with_overrides(["train.batch_size=16"]), tmp_path, "cpu", None, None
    )
    loop = floor.PaperLossLoop(trainer, BareLoop(trainer))
    model, proc = trainer.model, trainer.model.process
    with torch.no_grad():  # weights away from their start, so the network's outputs matter
        gen = torch.Generator().manual_seed(4)
        for p in model.net.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.3)
        for p, q in zip(loop.net.parameters(), model.net.parameters(), strict=True):
            p.copy_(q)
        beta = model.beta().detach()
        x0 = loop.data[:64].double()
        t = torch.randint(2, model.T + 1, (64,), generator=gen)
        xt = proc.q_sample(x0, t, beta, gen)
        lab = proc.kl(x0, xt, t, model.readout(xt, t, beta), beta)
        ours = loop.kl(x0.float(), xt.float(), t).double()
    torch.testing.assert_close(ours, lab, rtol=2e-3, atol=1e-4)
    loss = loop.loss()
    assert loss.dim() == 0 and torch.isfinite(loss) and float(loss.detach()) >= 0
    loop.step()

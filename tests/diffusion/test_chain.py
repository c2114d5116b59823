"""The one reverse chain (diffusion/chains/chain.py) and every `Reverse` it runs on, through one
suite: closed-form kernels, trained-model kernels (Gaussian diagonal and full, binomial) and their
respaced (strided) versions."""

from __future__ import annotations

import math

import pytest
import torch

from diffusion.chains.chain import Respaced, Reverse, run_chain
from diffusion.chains.posterior_chains import binary_inpaint_chain, denoise_chain
from diffusion.chains.reverse import (
    BinomialReverse,
    GaussianReverse,
    gaussian_reverse,
    model_reverse,
)
from diffusion.chains.strided import strided_from_one_step
from diffusion.model import DiffusionModel
from diffusion.presets import PRESETS
from diffusion.processes.base import Bernoulli, CorrelatedNormal, Normal
from diffusion.processes.schedules import baseline_beta

T = 12


def oracle_gaussian() -> GaussianReverse:
    beta = baseline_beta(T, beta1=1e-3, beta_max=0.5)

    def mean_var(x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        b = float(beta[t - 1])
        return math.sqrt(1 - b) * x, torch.full_like(x, b)

    return GaussianReverse(beta=beta, mean_var=mean_var)


def oracle_binomial() -> BinomialReverse:
    m, beta = 0.3, [1.0 / (T - t + 1) for t in range(1, T + 1)]
    return BinomialReverse(T=T, m=m, prob=lambda x, t: x * (1 - beta[t - 1]) + m * beta[t - 1])


def perturbed(preset: str, shape: tuple[int, ...], kind: str, over: list[str]) -> DiffusionModel:
    torch.manual_seed(0)
    model = DiffusionModel(PRESETS[preset].with_overrides(over), shape, kind)
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def build(name: str) -> tuple[Reverse, tuple[int, ...]]:
    swiss = ("swissroll-smoke", (2,), "points")
    if name == "oracle gaussian":
        return oracle_gaussian(), (3,)
    if name == "oracle gaussian, 5 kept steps":
        return oracle_gaussian().respaced(5), (3,)
    if name == "oracle binomial":
        return oracle_binomial(), (4,)
    if name == "model gaussian":
        return model_reverse(perturbed(*swiss, ["diffusion.T=12"])), (2,)
    if name == "model gaussian, 4 kept steps":
        return gaussian_reverse(perturbed(*swiss, ["diffusion.T=12"])).respaced(4), (2,)
    if name == "model gaussian full covariance":
        return model_reverse(perturbed(*swiss, ["diffusion.covariance=full"])), (2,)
    if name == "model binomial":
        return model_reverse(perturbed("heartbeat-smoke", (20,), "binary", [])), (20,)
    raise KeyError(name)


NAMES = [
    "oracle gaussian",
    "oracle gaussian, 5 kept steps",
    "oracle binomial",
    "model gaussian",
    "model gaussian, 4 kept steps",
    "model gaussian full covariance",
    "model binomial",
]


@pytest.fixture(params=NAMES)
def case(request: pytest.FixtureRequest) -> tuple[Reverse, tuple[int, ...]]:
    return build(request.param)


def test_run_chain_is_the_written_out_loop(case: tuple[Reverse, tuple[int, ...]]) -> None:
    """x^T ~ pi, then one draw from each level's kernel, T..1, in that order (section 2.2)."""
    rev, shape = case
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    x_T = rev.prior((6, *shape), torch.device("cpu")).sample(g1)
    seen: list[int] = []
    got = run_chain(rev, x_T, g1, on_level=lambda x, level: seen.append(level))
    x = rev.prior((6, *shape), torch.device("cpu")).sample(g2)
    for t in range(rev.T, 0, -1):
        x = rev.kernel(x, t).sample(g2)
    assert torch.equal(got, x) and got.shape == (6, *shape) and got.dtype == torch.float64
    assert seen == list(range(rev.T, -1, -1))


def test_levels_map_to_kept_steps(case: tuple[Reverse, tuple[int, ...]]) -> None:
    rev, _ = case
    steps = rev.steps
    assert len(steps) == rev.T + 1 and steps[:2] == [0, 1]
    assert all(b > a for a, b in zip(steps[:-1], steps[1:], strict=True))
    base = rev.base if isinstance(rev, Respaced) else rev
    assert steps[-1] == base.T and rev.respaced(None) is rev


def test_first_level_is_the_fixed_first_step(case: tuple[Reverse, tuple[int, ...]]) -> None:
    """Level 1 -> 0 is the reversal of q(x^1 | x^0) under pi whatever the network (App. B.2):
    N(sqrt(1 - beta_1) x, beta_1) or Bernoulli(x (1 - beta_1) + m beta_1)."""
    rev, shape = case
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    dist = rev.kernel(x if not isinstance(rev, BinomialReverse) else (x > 0).double(), 1)
    if isinstance(dist, Bernoulli):
        if isinstance(rev, BinomialReverse):
            return  # a closed form given as such
        b, m = float(rev.beta[0]), rev.process.m  # type: ignore[attr-defined]
        bits = (x > 0).double()
        torch.testing.assert_close(rev.kernel(bits, 1).p, bits * (1 - b) + m * b)
        return
    b = float(rev.alpha_bar[0] - rev.alpha_bar[1])  # beta_1 (abar_0 = 1)
    torch.testing.assert_close(dist.mean, math.sqrt(1 - b) * x)
    var = dist.var if isinstance(dist, Normal) else dist.s
    torch.testing.assert_close(var, torch.full_like(x, b))
    if isinstance(dist, CorrelatedNormal):
        torch.testing.assert_close(
            dist.U, torch.eye(shape[0], dtype=torch.float64).expand(5, -1, -1)
        )


def test_bad_moves_and_strides_are_refused() -> None:
    rev, _ = build("oracle gaussian")
    x = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="moves down one level"):
        run_chain(rev, x, None, levels=[T, T - 2, 0])
    with pytest.raises(ValueError, match="diagonal Gaussian"):
        oracle_binomial().respaced(4).kernel(x, 3)
    with pytest.raises(ValueError, match="binary product needs a Bernoulli"):
        binary_inpaint_chain(rev, torch.full((2, 3), 0.5, dtype=torch.float64))
    with pytest.raises(ValueError, match="denoising needs a Normal"):
        denoise_chain(oracle_binomial(), torch.zeros(2, 4, dtype=torch.float64), 1.0)
    with pytest.raises(ValueError, match="full-covariance"):
        gaussian_reverse(
            perturbed("swissroll-smoke", (2,), "points", ["diffusion.covariance=full"])
        )


LEVEL_CASES = [
    ("swissroll-smoke", (2,), "points", ["diffusion.T=12"]),
    ("swissroll-smoke", (2,), "points", ["diffusion.T=12", "diffusion.mean=v"]),
    ("swissroll-smoke", (2,), "points", ["diffusion.covariance=full"]),
    ("heartbeat-smoke", (20,), "binary", []),
    ("digits-smoke", (1, 8, 8), "image", ["diffusion.T=6", "diffusion.J=6"]),
]


def _level_model(preset, shape, kind, over):
    model = perturbed(preset, shape, kind, over)
    with torch.no_grad():  # outputs of order one, so that the readout's terms all matter
        for p in model.net.parameters():
            p.add_(torch.randn_like(p))
    x = model.process.prior_sample(5, model.shape, torch.Generator().manual_seed(1), "cpu")
    return model, model.beta().detach(), x


@pytest.mark.parametrize("preset, shape, kind, over", LEVEL_CASES)
def test_level_kernel_is_the_per_row_kernel(preset, shape, kind, over) -> None:
    """The chains' kernel at one level (ModelReverse.kernel: the schedule's numbers at t as
    single numbers, the Gaussian mean straight from the network's outputs) equals
    process.p_step(readout) with t a tensor at every level, the first step included: bit
    for bit for the binomial and full-covariance kernels, to float64 rounding (1e-12) for
    the diagonal Gaussian one, whose mean skips the round trip through zM (that round trip
    loses digits in proportion to |zM|, up to 1e8 where Sigma is small: the bound scales with
    it). Catches a level
    kernel that reads the schedule at t - 1 instead of t, takes the first step's kernel at
    another level, or forms the mean of the other form ("v" for "noise")."""
    model, beta, x = _level_model(preset, shape, kind, over)
    rev = model_reverse(model)
    for t in range(model.T, 0, -1):
        with torch.no_grad():
            fast = rev.kernel(x, t)
            tt = torch.full((5,), t, dtype=torch.long)
            z = model.readout(x, tt, beta)
            ref = model.process.p_step(x, tt, z, beta)
        assert type(fast) is type(ref)
        atol = 1e-14 * (1 + float(z[..., 0].abs().max()))
        exact = not isinstance(ref, Normal) or isinstance(ref, CorrelatedNormal)
        for name in ("mean", "var", "s", "U", "p"):
            if hasattr(ref, name):
                a, b = getattr(fast, name), getattr(ref, name)
                if exact:
                    assert torch.equal(a, b), f"t={t}: {name} differs by {(a - b).abs().max()}"
                else:
                    torch.testing.assert_close(a, b, rtol=1e-12, atol=atol)


@pytest.mark.parametrize("preset, shape, kind, over", [LEVEL_CASES[i] for i in (0, 1, 4)])
def test_strided_model_step_is_the_strided_formula(preset, shape, kind, over) -> None:
    """ModelReverse.step (the strided step with its constants folded) equals
    diffusion.chains.strided.strided_from_one_step applied to the per-row kernel, to float64
    rounding, for every pair of kept steps of a 3-step chain. Catches a folded coefficient
    with the wrong sign or step (c0 at s instead of t), or the variance exponent inverted."""
    model, beta, x = _level_model(preset, shape, kind, over)
    rev = gaussian_reverse(model)
    grid = rev.respaced(3).steps
    for t, s in zip(grid[:0:-1], grid[-2::-1], strict=True):
        with torch.no_grad():
            fast = rev.step(x, t, s)
            tt = torch.full((5,), t, dtype=torch.long)
            z = model.readout(x, tt, beta)
            mu, var = model.process.p_mean_var(x, tt, z, beta)
        want = (mu, var) if s == t - 1 else strided_from_one_step(rev.alpha_bar, x, mu, var, t, s)
        atol = 1e-14 * (1 + float(z[..., 0].abs().max()))  # zM's round trip (test above)
        torch.testing.assert_close(fast.mean, want[0], rtol=1e-12, atol=atol)
        torch.testing.assert_close(fast.var, want[1], rtol=1e-12, atol=1e-15)

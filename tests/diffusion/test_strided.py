"""The strided chain of S < T steps (diffusion/chains/strided.py, diffusion.chains.chain.Respaced).

S = T must reproduce the full chain; for the oracle (data from pi, exact reverse kernel)
every strided step must be the exact S-step kernel N(sqrt(abar_t/abar_s) x, 1 - abar_t/abar_s).
"""

from __future__ import annotations

import math

import pytest
import torch

from diffusion.chains.chain import Respaced, run_chain
from diffusion.chains.posterior_chains import denoise_chain
from diffusion.chains.reverse import GaussianReverse
from diffusion.chains.strided import kept_steps, strided_from_one_step
from diffusion.processes.schedules import baseline_beta

Z = 4.5


def oracle(T: int) -> GaussianReverse:
    beta = baseline_beta(T, beta1=1e-3, beta_max=0.5)

    def mean_var(x: torch.Tensor, t: int):
        b = float(beta[t - 1])
        return math.sqrt(1 - b) * x.double(), torch.full_like(x, b, dtype=torch.float64)

    return GaussianReverse(beta=beta, mean_var=mean_var)


def learned_like(T: int) -> GaussianReverse:
    """A made-up kernel in the paper's parameterization with non-trivial zM, zS."""
    beta = baseline_beta(T, beta1=1e-3, beta_max=0.5)

    def mean_var(x: torch.Tensor, t: int):
        b = beta[t - 1]
        z_m, z_s = torch.tanh(x) * 0.5, torch.cos(x + t) * 0.8
        var = torch.sigmoid(z_s + torch.log(b) - torch.log1p(-b))
        if t == 1:
            return torch.sqrt(1 - b) * x, b.expand_as(x).clone()
        return (x - z_m) * (1 - var) + z_m, var

    return GaussianReverse(beta=beta, mean_var=mean_var)


def test_kept_steps() -> None:
    assert kept_steps(10, None) == list(range(11))
    assert kept_steps(10, 10) == list(range(11))
    for T, S in [(40, 5), (500, 50), (1000, 999), (7, 2)]:
        grid = kept_steps(T, S)
        assert len(grid) == S + 1 and grid[:2] == [0, 1] and grid[-1] == T
        assert all(b > a for a, b in zip(grid[:-1], grid[1:], strict=True))
    for bad in (1, 0, 11, 2.5, True):
        with pytest.raises(ValueError, match="steps"):
            kept_steps(10, bad)


def test_general_formula_at_one_step_is_the_model_kernel() -> None:
    rev = learned_like(20)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for t in (2, 7, 20):
        mu, var = rev.mean_var(x, t)
        m2, v2 = strided_from_one_step(rev.alpha_bar, x, mu, var, t, t - 1)
        assert torch.allclose(m2, mu, atol=1e-10) and torch.allclose(v2, var, rtol=1e-10)


def test_strided_with_S_equal_T_is_the_full_chain() -> None:
    rev = learned_like(15)
    x_T = torch.randn(8, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    assert rev.respaced(15) is rev and rev.respaced(None) is rev
    a = run_chain(rev.respaced(15), x_T, g1)
    x = x_T.clone()
    for t in range(15, 0, -1):  # the full chain, written out
        mu, var = rev.mean_var(x, t)
        x = mu + var.sqrt() * torch.randn(mu.shape, generator=g2, dtype=torch.float64)
    assert torch.equal(a, x)


def test_respacing_keeps_the_schedule_at_the_kept_steps() -> None:
    """The respaced process owns abar at the kept steps (the same numbers), its one-level
    betas multiply back to them, and its level-i kernel is the strided step of the base."""
    rev = learned_like(30)
    sub = rev.respaced(7)
    assert isinstance(sub, Respaced) and sub.T == 7 and sub.steps == kept_steps(30, 7)
    assert torch.equal(sub.alpha_bar, rev.alpha_bar[sub.steps])
    assert torch.allclose(torch.cumprod(1 - sub.beta, 0), sub.alpha_bar[1:], rtol=1e-12)
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    for i in (7, 3, 2, 1):
        t, s = sub.steps[i], sub.steps[i - 1]
        mu, var = rev.mean_var(x, t)
        want = (mu, var) if s == t - 1 else strided_from_one_step(rev.alpha_bar, x, mu, var, t, s)
        got = sub.kernel(x, i)
        assert torch.equal(got.mean, want[0]) and torch.equal(got.var, want[1])
    with pytest.raises(ValueError, match="kept steps"):
        Respaced(rev, [0, 2, 30])


def test_oracle_strided_kernel_is_exact() -> None:
    rev = oracle(50)
    abar = rev.alpha_bar
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)[None]
    for t, s in [(50, 30), (30, 1), (12, 5)]:
        step = rev.step(x, t, s)
        mean, var = step.mean, step.var
        a = float(abar[t] / abar[s])
        assert torch.allclose(mean, math.sqrt(a) * x, atol=1e-12)
        assert torch.allclose(var, torch.full_like(var, 1 - a), rtol=1e-10)


def test_oracle_strided_sampling_returns_pi() -> None:
    rev = oracle(100)
    n = 20_000
    g = torch.Generator().manual_seed(3)
    x_T = torch.randn(n, 2, generator=g, dtype=torch.float64)
    x0 = run_chain(rev.respaced(6), x_T, g)
    assert torch.all(x0.mean(0).abs() < Z / math.sqrt(n))
    assert torch.all((x0.var(0) - 1).abs() < Z * math.sqrt(2 / n))


def test_strided_denoising_matches_its_recursion() -> None:
    T, S, s2 = 60, 8, 0.5
    rev = oracle(T)
    abar = rev.alpha_bar
    grid = kept_steps(T, S)
    c, v = 1.0, 0.0
    for i in range(len(grid) - 1, 0, -1):  # exact strided kernel times N(y, s2)
        a = float(abar[grid[i]] / abar[grid[i - 1]])
        b = 1 - a
        vt = 1 / (1 / b + 1 / s2)
        k = vt * math.sqrt(a) / b
        c, v = k * c + vt / s2, k * k * v + vt
    n = 20_000
    y = torch.tensor([1.5, -0.5], dtype=torch.float64)
    x = denoise_chain(rev, y.expand(n, 2), s2, steps=S, generator=torch.Generator().manual_seed(4))
    assert torch.all((x.mean(0) - c * y).abs() < Z * math.sqrt(v / n))
    assert torch.all((x.var(0) - v).abs() < Z * v * math.sqrt(2 / n))


def test_strided_bound_of_the_oracle_is_the_true_log_likelihood() -> None:
    """Data from pi, exact kernels: K_S = E log N(x0; 0, I) = -(D/2) log(2 pi e) for every S."""
    from diffusion.evaluation.bound import reverse_strided_bound
    from diffusion.processes.gaussian import GaussianDiffusion

    rev = oracle(40)
    n, D = 4000, 3
    x0 = torch.randn(n, D, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    truth = -0.5 * D * math.log(2 * math.pi * math.e)
    for S in (None, 10, 3):
        k = reverse_strided_bound(rev, GaussianDiffusion(), x0, S, torch.Generator().manual_seed(6))
        assert abs(k.mean().item() - truth) < Z * k.std().item() / math.sqrt(n), S


def test_strided_bound_with_all_steps_matches_the_core_bound() -> None:
    from diffusion.evaluation.bound import evaluate_bound, strided_bound
    from diffusion.model import DiffusionModel
    from diffusion.presets import PRESETS

    torch.manual_seed(0)
    model = DiffusionModel(PRESETS["digits-smoke"], (1, 8, 8), "images")
    with torch.no_grad():
        for p in model.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x = 0.8 * torch.randn(
        300, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    a = evaluate_bound(model, x, torch.Generator().manual_seed(2)).per_example
    b = strided_bound(model, x, None, torch.Generator().manual_seed(3))
    se = math.sqrt(a.var().item() / 300 + b.var().item() / 300)
    assert abs(a.mean().item() - b.mean().item()) < Z * se
    assert strided_bound(model, x, 5, torch.Generator().manual_seed(3)).mean() < b.mean()

"""Posterior chains against closed forms and enumeration (model.md sections 8 and 13).

The oracle: for data drawn from pi = N(0, I) the forward chain is stationary and reversible,
so the exact reverse kernel is p(x^{t-1} | x^t) = N(sqrt(alpha_t) x^t, beta_t) (for every t,
the fixed first step included). Plugged into the posterior chains, every quantity below has
a closed form.

Closing note on denoising. Multiplying every reverse step by r = N(y, s2), with the chain
started from y (section 2.5.3, figure 3), is a linear-Gaussian recursion, whose output is
N(c y, v). With s2 = 1 it gives c = 0.664, v = 0.366 (T = 10), c = 0.666, v = 0.334
(T = 500), while the true posterior of the prior N(0, 1) is N(y / 2, 1 / 2): the product
rule over-weights the observation, because r is applied at every one of T steps, not once.
The tests check the recursion (what the code must compute), not the true posterior.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from diffusion.chains.posterior_chains import (
    binary_inpaint_chain,
    binary_product,
    denoise_chain,
    gaussian_product,
    inpaint_paper_chain,
    inpaint_repaint_chain,
    repaint_schedule,
)
from diffusion.chains.reverse import BinomialReverse, GaussianReverse
from diffusion.processes.schedules import baseline_beta

Z = 4.5  # standard errors allowed


def oracle(T: int = 10) -> GaussianReverse:
    beta = baseline_beta(T, beta1=1e-3, beta_max=0.5)

    def mean_var(x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        b = float(beta[t - 1])
        return math.sqrt(1 - b) * x.double(), torch.full_like(x, b, dtype=torch.float64)

    return GaussianReverse(beta=beta, mean_var=mean_var)


def denoise_closed_form(beta: list[float], s2: float) -> tuple[float, float]:
    """Output N(c y, v) of the oracle denoising recursion started from x^T = y."""
    c, v = 1.0, 0.0
    for b in reversed(beta):
        vt = 1 / (1 / b + 1 / s2)
        a = vt * math.sqrt(1 - b) / b
        c, v = a * c + vt / s2, a * a * v + vt
    return c, v


def check_moments(x: torch.Tensor, mean: torch.Tensor, var: float) -> None:
    """Sample mean and variance along dim 0 within Z standard errors of the truth."""
    n = x.shape[0]
    m = x.mean(0)
    assert torch.all((m - mean).abs() < Z * math.sqrt(var / n)), (m, mean)
    s = x.var(0)
    assert torch.all((s - var).abs() < Z * var * math.sqrt(2 / (n - 1))), (s, var)


def test_gaussian_product_matches_pointwise_density_product() -> None:
    mu, var, y, s2 = torch.tensor([0.3]), torch.tensor([0.5]), torch.tensor([-1.2]), 0.8
    m, v = gaussian_product(mu, var, y, s2)
    grid = torch.linspace(-8, 8, 20001, dtype=torch.float64)
    logp = -0.5 * (grid - 0.3) ** 2 / 0.5 - 0.5 * (grid + 1.2) ** 2 / 0.8
    w = torch.exp(logp - logp.max())
    w /= w.sum()
    assert float((w * grid).sum()) == pytest.approx(float(m), abs=1e-6)
    assert float((w * (grid - m) ** 2).sum()) == pytest.approx(float(v), abs=1e-6)


def test_denoise_oracle_matches_closed_form_recursion() -> None:
    rev = oracle(10)
    y = torch.tensor([-2.0, 0.0, 1.0, 3.0], dtype=torch.float64)
    n, s2 = 20_000, 1.0
    g = torch.Generator().manual_seed(0)
    x = denoise_chain(rev, y.expand(n, 4), s2, generator=g)
    c, v = denoise_closed_form(rev.beta.tolist(), s2)
    check_moments(x, c * y, v)
    # and it is measurably not the true posterior N(y/2, 1/2) (see the module docstring)
    assert abs(c - 0.5) > 0.1 and abs(v - 0.5) > 0.1


def test_denoise_start_from_prior_differs_only_by_start() -> None:
    rev = oracle(10)
    y = torch.zeros(5000, 3, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    x = denoise_chain(rev, y, 1.0, start="prior", generator=g)
    # closed form from x^T ~ N(0, 1): same mean 0, variance c_T^2 + v
    cT, v = 1.0, 0.0
    for b in reversed(rev.beta.tolist()):
        vt = 1 / (1 / b + 1.0)
        a = vt * math.sqrt(1 - b) / b
        cT, v = a * cT, a * a * v + vt
    check_moments(x, torch.zeros(3), cT**2 + v)
    with pytest.raises(ValueError, match="start"):
        denoise_chain(rev, y, 1.0, start="nowhere")


@pytest.mark.parametrize("method", ["paper", "repaint"])
def test_inpainted_coordinates_follow_the_prior(method: str) -> None:
    rev = oracle(12)
    n = 8000
    known = torch.tensor([[5.0, -3.0, 0.0, 0.0]], dtype=torch.float64).expand(n, 4)
    mask = torch.tensor([True, True, False, False])
    g = torch.Generator().manual_seed(2)
    if method == "paper":
        x = inpaint_paper_chain(rev, known, mask, generator=g)
    else:
        x = inpaint_repaint_chain(rev, known, mask, jump_length=3, jump_n_sample=3, generator=g)
    assert torch.equal(x[:, :2], known[:, :2])  # bit for bit
    check_moments(x[:, 2:], torch.zeros(2), 1.0)


def test_inpainting_with_strided_steps_keeps_the_prior() -> None:
    rev = oracle(30)
    n = 8000
    known = torch.full((n, 3), 2.5, dtype=torch.float64)
    mask = torch.tensor([True, False, False])
    g = torch.Generator().manual_seed(3)
    x = inpaint_paper_chain(rev, known, mask, steps=7, generator=g)
    assert torch.equal(x[:, 0], known[:, 0])
    check_moments(x[:, 1:], torch.zeros(2), 1.0)


def test_repaint_schedule_shape() -> None:
    seq = repaint_schedule(20, 5, 3)
    assert seq[0] == 20 and seq[-1] == 0
    moves = [b - a for a, b in zip(seq[:-1], seq[1:], strict=True)]
    assert set(moves) <= {-1, 5}
    # jump points 0, 5, 10, 15, each visited with 2 extra passes of 5 steps down
    assert moves.count(5) == 4 * 2
    assert moves.count(-1) == 20 + 4 * 2 * 5
    assert repaint_schedule(20, 5, 1) == list(range(20, -1, -1))


def test_binary_product_matches_enumeration() -> None:
    g = torch.Generator().manual_seed(4)
    c = torch.rand(3, generator=g, dtype=torch.float64)
    d = torch.tensor([1.0, 0.5, 0.2], dtype=torch.float64)
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)), dtype=torch.float64)
    w = torch.prod(torch.where(states == 1, c, 1 - c) * torch.where(states == 1, d, 1 - d), 1)
    w = w / w.sum()
    marg = (w[:, None] * states).sum(0)
    assert torch.allclose(binary_product(c, d), marg, atol=1e-12)
    # the normalized product factorizes: the joint is the product of the marginals
    p = binary_product(c, d)
    joint = torch.prod(torch.where(states == 1, p, 1 - p), 1)
    assert torch.allclose(joint, w, atol=1e-12)


def test_binary_chain_matches_enumerated_chain() -> None:
    """A tiny binomial model (T = 3, D = 2, flip rates that depend on both bits): the law of
    the posterior chain's output, enumerated over all 4 states per step, against samples."""
    T, m = 3, 0.3

    def prob(x: torch.Tensor, t: int) -> torch.Tensor:
        other = x.flip(-1)
        return torch.sigmoid(0.7 * t - 1.5 * x + 2.0 * other - 0.4).double()

    rev = BinomialReverse(T=T, m=m, prob=prob)
    d = torch.tensor([0.5, 0.8], dtype=torch.float64)
    states = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2)), dtype=torch.float64)

    def bern(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.prod(torch.where(x == 1, p, 1 - p), -1)

    law = bern(binary_product(torch.full((2,), m, dtype=torch.float64), d), states)
    for t in range(T, 0, -1):
        trans = torch.stack([bern(binary_product(prob(s, t), d), states) for s in states])
        law = law @ trans  # (4,) over x^{t-1}
    n = 40_000
    g = torch.Generator().manual_seed(5)
    x = binary_inpaint_chain(rev, d.expand(n, 2), generator=g)
    idx = (x[:, 0] * 2 + x[:, 1]).long()
    freq = torch.bincount(idx, minlength=4).double() / n
    se = torch.sqrt(law * (1 - law) / n)
    assert torch.all((freq - law).abs() < Z * se), (freq, law)


def test_binary_inpaint_with_oracle_keeps_known_bits_and_prior() -> None:
    T, m = 20, 0.2
    beta = [1.0 / (T - t + 1) for t in range(1, T + 1)]
    rev = BinomialReverse(T=T, m=m, prob=lambda x, t: x * (1 - beta[t - 1]) + m * beta[t - 1])
    n = 20_000
    d = torch.tensor([1.0, 0.0, 0.5, 0.5], dtype=torch.float64).expand(n, 4)
    x = binary_inpaint_chain(rev, d, generator=torch.Generator().manual_seed(6))
    assert torch.all(x[:, 0] == 1) and torch.all(x[:, 1] == 0)
    p = x[:, 2:].mean(0)
    assert torch.all((p - m).abs() < Z * math.sqrt(m * (1 - m) / n))


@pytest.mark.parametrize("steps", [None, 4])
def test_denoise_from_the_matching_level_is_the_true_posterior(steps: int | None) -> None:
    """start="level": sqrt(abar_t*) y plus noise up to q(x^t* | x^0), then the oracle's plain
    chain, whose x^0 | x^t is exact: x^0 ~ N(a y, a (1 - a - a s2) + 1 - a), a = abar_t*;
    N(y / (1 + s2), s2 / (1 + s2)), the true posterior, when a = 1 / (1 + s2) (T large)."""
    from diffusion.chains.posterior_chains import level_of

    rev = oracle(400)
    y = torch.tensor([-2.0, 0.0, 1.5], dtype=torch.float64)
    n, s2 = 20_000, 0.25
    t_star = level_of(rev, s2)
    a = float(rev.alpha_bar[t_star])
    assert a * (1 + s2) <= 1 < float(rev.alpha_bar[t_star - 1]) * (1 + s2)
    x = denoise_chain(
        rev,
        y.expand(n, 3),
        s2,
        start="level",
        steps=steps,
        generator=torch.Generator().manual_seed(4),
    )
    check_moments(x, a * y, a * (1 - a - a * s2) + 1 - a)
    assert abs(a - 1 / (1 + s2)) < 0.01  # close to the true posterior's weights

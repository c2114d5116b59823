"""Posterior chains on correlated data, where the exact answer is known in closed form.

The oracle: data x^0 ~ N(0, C) in D = 3 dimensions with correlation 0.95 between neighbours
(0.9025 between the ends), and the exact reverse kernel of that data. With
Sigma_t = abar_t C + (1 - abar_t) I the forward marginal of x^t,

    q(x^{t-1} | x^t) = N(A_t x^t, V_t),
    A_t = sqrt(alpha_t) Sigma_{t-1} Sigma_t^-1,
    V_t = Sigma_{t-1} - alpha_t Sigma_{t-1} Sigma_t^-1 Sigma_{t-1},

and x^T ~ N(0, Sigma_T): the chain samples N(0, C) exactly (checked below). Every chain in
diffusion.chains.posterior_chains is linear-Gaussian on this oracle, so each has its own output
distribution in closed form (propagated mean and covariance, `*_closed_form` below), beside
the exact answer:

- Inpainting (x_1 known = 1.5; x_2, x_3 missing): the exact conditional is
  N((1.425, 1.354), [[0.0975, 0.0926], [0.0926, 0.1855]]).
  The paper's rule (section 2.5: every step multiplied by r = the delta on the known
  coordinate and renormalized; for a full-covariance step that is the step conditioned on
  x_1 = 1.5, for a diagonal one the clamp) is NOT the exact conditional, even with the exact
  kernel: r(x^t) = r(x^0) holds the known coordinate noise-free at every level, where the
  data's x^t_1 would be noisy. Its own closed form at T = 50: means (1.136, 0.990),
  variances (0.226, 0.378); as T grows it tends to (1.119, 0.970), (0.235, 0.390). The gap
  to the truth (0.29 and 0.36 in the means, variances 2.3 and 2.0 times too large) is the
  rule's, and is pinned below; the chain must give the rule's closed form.
  RePaint (Lugmayr et al. 2022) redraws the known coordinate from q(x^t_1 | x^0_1) and
  resamples; it approaches the exact conditional as resampling grows: (T, jump, resample) =
  (50, 10, 5) is 0.14 off in the means, (10, 1, 100) 0.006 off, which the samples reach
  within their standard errors.
- Denoising y = x^0 + N(0, s2 I), s2 = 0.5: the exact posterior is N(C (C + s2 I)^-1 y,
  C - C (C + s2 I)^-1 C). The paper's rule (every step times N(y, s2), chain started at y)
  over-weights y (r enters at every step, not once): in the eigenbasis of C (eigenvalues
  lam = 0.034, 0.0975, 2.869) its output is N(c y', v) per coordinate with c = (0.156,
  0.297, 1.015) and v = (0.027, 0.060, 0.270) at T = 50, where the exact posterior has
  c = lam / (lam + s2) = (0.064, 0.163, 0.852) and v = lam s2 / (lam + s2) = (0.032, 0.082,
  0.426). The test checks the rule's own closed form (what the code must compute) in the
  data's coordinates and pins the gap.

Broken variants kept here and shown to fail: the chain that pastes the known values in only
at the end (the missing coordinates then follow N(0, C_MM): means 0), the clamp without
conditioning the correlated step, and denoising that never multiplies by r.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffusion.chains.chain import Reverse, run_chain
from diffusion.chains.posterior_chains import (
    denoise_chain,
    inpaint_paper_chain,
    inpaint_repaint_chain,
    repaint_schedule,
)
from diffusion.chains.reverse import GaussianReverse
from diffusion.processes.base import CorrelatedNormal

Z = 4.5  # standard errors allowed
RHO = 0.95
C = np.array([[1, RHO, RHO**2], [RHO, 1, RHO], [RHO**2, RHO, 1]])
MASK = np.array([True, False, False])  # x_1 known
A_KNOWN = 1.5
N = 20_000


def schedule(T: int) -> np.ndarray:
    return np.geomspace(1e-3, 0.5, T)


def marginals(beta: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """abar (T + 1,), Sigma_t for t = 0..T."""
    abar = np.concatenate([[1.0], np.cumprod(1 - beta)])
    return abar, [a * C + (1 - a) * np.eye(len(C)) for a in abar]


def exact_kernels(beta: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """[(A_t, V_t)] for t = 1..T (index t - 1)."""
    _, sig = marginals(beta)
    out = []
    for t in range(1, len(beta) + 1):
        alpha = 1 - beta[t - 1]
        g = sig[t - 1] @ np.linalg.inv(sig[t])
        v = sig[t - 1] - alpha * g @ sig[t - 1]
        out.append((math.sqrt(alpha) * g, (v + v.T) / 2))
    return out


def correlated(mean: torch.Tensor, cov: np.ndarray) -> CorrelatedNormal:
    """N(mean, cov) for every example, in CorrelatedNormal's form diag(s)^1/2 U U^T diag(s)^1/2."""
    L = np.linalg.cholesky(cov)
    s = np.diag(L) ** 2
    U = torch.from_numpy(L / np.sqrt(s)[:, None]).expand(mean.shape[0], *L.shape)
    return CorrelatedNormal(mean, torch.from_numpy(s).expand_as(mean).contiguous(), U)


class ExactReverse(Reverse):
    """The exact reverse process of N(0, C) data (full-covariance steps)."""

    def __init__(self, T: int) -> None:
        self.T, self.beta_np = T, schedule(T)
        self.beta = torch.from_numpy(self.beta_np)
        self.kernels = exact_kernels(self.beta_np)
        self.sigma_T = marginals(self.beta_np)[1][-1]

    def kernel(self, x: torch.Tensor, t: int) -> CorrelatedNormal:
        A, V = self.kernels[t - 1]
        return correlated(x @ torch.from_numpy(A).T, V)

    def prior(self, shape: tuple[int, ...], device: torch.device) -> CorrelatedNormal:
        return correlated(torch.zeros(shape, dtype=torch.float64), self.sigma_T)


# ------------------------------------------------------------------ closed forms
def exact_conditional(a: float = A_KNOWN) -> tuple[np.ndarray, np.ndarray]:
    k, m = MASK, ~MASK
    gain = C[np.ix_(m, k)] @ np.linalg.inv(C[np.ix_(k, k)])
    return gain @ np.full(k.sum(), a), C[np.ix_(m, m)] - gain @ C[np.ix_(k, m)]


def _known(mean: np.ndarray, cov: np.ndarray, value: np.ndarray, var: float) -> None:
    """Set the known coordinates to N(value, var), independent of the rest (in place)."""
    mean[MASK] = value
    cov[MASK, :] = 0
    cov[:, MASK] = 0
    cov[np.ix_(MASK, MASK)] = var * np.eye(MASK.sum())


def paper_closed_form(T: int, condition: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Output of the paper's rule, per sample: x' = A x + n, n ~ N(0, V), then (condition)
    x'_M += G (a - x'_K) with G = V_MK V_KK^-1 (the step conditioned on the known value), and
    x'_K = a. condition=False: the bare clamp."""
    k, m = MASK, ~MASK
    _, sig = marginals(schedule(T))
    mean, cov = np.zeros(len(C)), sig[-1].copy()
    _known(mean, cov, A_KNOWN, 0.0)
    for A, V in reversed(exact_kernels(schedule(T))):
        G = V[np.ix_(m, k)] @ np.linalg.inv(V[np.ix_(k, k)]) if condition else 0 * A[m][:, k]
        B = A[m, :] - G @ A[k, :]
        new_mean = B @ mean + G @ np.full(k.sum(), A_KNOWN)
        new_cov = B @ cov @ B.T + V[np.ix_(m, m)] - G @ V[np.ix_(k, m)]
        mean, cov = np.zeros(len(C)), np.zeros_like(cov)
        mean[m], cov[np.ix_(m, m)] = new_mean, new_cov
        _known(mean, cov, A_KNOWN, 0.0)
    return mean[m], cov[np.ix_(m, m)]


def repaint_closed_form(T: int, jump: int, resample: int) -> tuple[np.ndarray, np.ndarray]:
    abar, sig = marginals(schedule(T))
    kernels = exact_kernels(schedule(T))
    mean, cov = np.zeros(len(C)), sig[-1].copy()
    levels = repaint_schedule(T, jump, resample)
    for cur, nxt in zip(levels[:-1], levels[1:], strict=True):
        if nxt == cur - 1:
            A, V = kernels[cur - 1]
            mean, cov = A @ mean, A @ cov @ A.T + V
            _known(mean, cov, math.sqrt(abar[nxt]) * A_KNOWN, 1 - abar[nxt])
        else:
            c2 = abar[nxt] / abar[cur]
            mean, cov = math.sqrt(c2) * mean, c2 * cov + (1 - c2) * np.eye(len(C))
    return mean[~MASK], cov[np.ix_(~MASK, ~MASK)]


def moments_mismatch(x: torch.Tensor, mean: np.ndarray, cov: np.ndarray) -> list[str]:
    """Where the sample mean or covariance of x (n, M) is more than Z standard errors off."""
    x = x.numpy()
    n = x.shape[0]
    bad = []
    se_m = np.sqrt(np.diag(cov) / n)
    for i in np.nonzero(np.abs(x.mean(0) - mean) > Z * se_m)[0]:
        bad.append(f"mean[{i}] {x.mean(0)[i]:.4f} vs {mean[i]:.4f}")
    s = np.cov(x, rowvar=False)
    se_c = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / (n - 1))
    for i, j in zip(*np.nonzero(np.abs(s - cov) > Z * se_c), strict=True):
        bad.append(f"cov[{i},{j}] {s[i, j]:.4f} vs {cov[i, j]:.4f}")
    return bad


def known_batch() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.zeros(N, len(C), dtype=torch.float64)
    x[:, MASK] = A_KNOWN
    return x, torch.from_numpy(MASK)[None].expand(N, -1)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------ the oracle itself
def test_oracle_chain_samples_the_data() -> None:
    rev = ExactReverse(20)
    x = run_chain(rev, rev.prior((N, 3), torch.device("cpu")).sample(gen()), gen(1))
    assert moments_mismatch(x, np.zeros(3), C) == []
    assert moments_mismatch(x, np.zeros(3), np.eye(3))  # the check can fail


# ------------------------------------------------------------------ inpainting
def test_paper_rule_closed_form_and_its_gap_to_the_exact_conditional() -> None:
    em, ec = exact_conditional()
    np.testing.assert_allclose(em, [1.425, 1.35375], atol=1e-12)
    np.testing.assert_allclose(ec, [[0.0975, 0.092625], [0.092625, 0.18549375]], atol=1e-12)
    pm, pc = paper_closed_form(50)
    np.testing.assert_allclose(pm, [1.136, 0.990], atol=1e-3)
    np.testing.assert_allclose(np.diag(pc), [0.226, 0.378], atol=1e-3)
    lm, lc = paper_closed_form(1000)
    np.testing.assert_allclose(lm, [1.119, 0.970], atol=1e-3)
    np.testing.assert_allclose(np.diag(lc), [0.235, 0.390], atol=1e-3)
    cm, _ = paper_closed_form(50, condition=False)  # the bare clamp
    np.testing.assert_allclose(cm, [1.097, 0.944], atol=1e-3)


def test_paper_inpainting_gives_its_rule_and_shows_the_gap() -> None:
    x_known, mask = known_batch()
    x = inpaint_paper_chain(ExactReverse(50), x_known, mask, generator=gen())
    assert torch.equal(x[:, MASK], x_known[:, MASK])
    assert moments_mismatch(x[:, ~MASK], *paper_closed_form(50)) == []
    assert moments_mismatch(x[:, ~MASK], *exact_conditional())  # the rule's gap is visible


def test_repaint_matches_its_closed_form_and_the_gap_is_stated() -> None:
    em, ec = exact_conditional()
    rm, rc = repaint_closed_form(50, 10, 5)
    np.testing.assert_allclose(rm, [1.326, 1.217], atol=1e-3)
    x_known, mask = known_batch()
    x = inpaint_repaint_chain(
        ExactReverse(50), x_known, mask, jump_length=10, jump_n_sample=5, generator=gen()
    )
    assert torch.equal(x[:, MASK], x_known[:, MASK])
    assert moments_mismatch(x[:, ~MASK], rm, rc) == []
    assert moments_mismatch(x[:, ~MASK], em, ec)  # RePaint (10, 5) is not exact


def test_repaint_with_heavy_resampling_gives_the_exact_conditional() -> None:
    em, ec = exact_conditional()
    gaps = [np.abs(repaint_closed_form(10, 1, r)[0] - em).max() for r in (1, 10, 100)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.007
    n = N // 2
    x_known, mask = known_batch()
    x = inpaint_repaint_chain(
        ExactReverse(10), x_known[:n], mask[:n], jump_length=1, jump_n_sample=100, generator=gen()
    )
    assert moments_mismatch(x[:, ~MASK], em, ec) == []


# ------------------------------------------------------------------ broken variants
def paste_at_end_chain(rev: Reverse, x_known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BROKEN: the chain never sees the known values; they are pasted in at the end."""
    x = run_chain(rev, rev.prior(tuple(x_known.shape), x_known.device).sample(gen()), gen(1))
    return torch.where(mask, x_known, x)


def clamp_only_chain(rev: Reverse, x_known: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BROKEN for correlated steps: known values clamped, the step not conditioned on them."""
    x = torch.where(mask, x_known, rev.prior(tuple(x_known.shape), x_known.device).sample(gen()))
    return run_chain(rev, x, gen(1), after=lambda x, level: torch.where(mask, x_known, x))


@pytest.mark.parametrize("broken", [paste_at_end_chain, clamp_only_chain])
def test_broken_inpainting_is_caught(broken) -> None:
    x_known, mask = known_batch()
    x = broken(ExactReverse(50), x_known, mask)
    assert torch.equal(x[:, MASK], x_known[:, MASK])  # known pixels alone prove nothing
    assert len(moments_mismatch(x[:, ~MASK], *paper_closed_form(50))) >= 2


# ------------------------------------------------------------------ denoising
S2 = 0.5
LAM, Q = np.linalg.eigh(C)  # ascending eigenvalues


def eigen_reverse(T: int) -> GaussianReverse:
    """The exact reverse kernel in the eigenbasis of C, where it is diagonal (x' = Q^T x)."""
    beta = schedule(T)
    abar = np.concatenate([[1.0], np.cumprod(1 - beta)])
    s = np.stack([a * LAM + 1 - a for a in abar])  # (T + 1, D) marginal variances
    lam_t = torch.from_numpy(s)

    def mean_var(x: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = 1 - beta[t - 1]
        coef = math.sqrt(alpha) * lam_t[t - 1] / lam_t[t]
        var = lam_t[t - 1] * beta[t - 1] / lam_t[t]
        return x.double() * coef, var.expand_as(x).clone()

    return GaussianReverse(beta=torch.from_numpy(beta), mean_var=mean_var)


def denoise_rule_closed_form(T: int) -> tuple[np.ndarray, np.ndarray]:
    """Per eigen-coordinate: the rule's output N(c y', v), chain started at x^T = y'."""
    beta = schedule(T)
    abar = np.concatenate([[1.0], np.cumprod(1 - beta)])
    s = np.stack([a * LAM + 1 - a for a in abar])
    c, v = np.ones(3), np.zeros(3)
    for t in range(T, 0, -1):
        a = math.sqrt(1 - beta[t - 1]) * s[t - 1] / s[t]
        var = s[t - 1] * beta[t - 1] / s[t]
        vt = 1 / (1 / var + 1 / S2)
        c, v = vt * a / var * c + vt / S2, (vt * a / var) ** 2 * v + vt
    return c, v


def test_denoise_rule_closed_form_and_its_gap_to_the_exact_posterior() -> None:
    c, v = denoise_rule_closed_form(50)
    np.testing.assert_allclose(LAM, [0.034, 0.0975, 2.869], atol=1e-3)
    np.testing.assert_allclose(c, [0.156, 0.297, 1.015], atol=1e-3)
    np.testing.assert_allclose(v, [0.027, 0.060, 0.270], atol=1e-3)
    np.testing.assert_allclose(LAM / (LAM + S2), [0.064, 0.163, 0.852], atol=1e-3)
    np.testing.assert_allclose(LAM * S2 / (LAM + S2), [0.032, 0.082, 0.426], atol=1e-3)


@pytest.mark.parametrize("multiply", [True, False], ids=["paper", "broken-no-product"])
def test_denoising_matches_the_rule_in_the_data_coordinates(multiply: bool) -> None:
    """Samples in the data's own coordinates (rotated back) against the rule's closed form:
    mean Q diag(c) Q^T y, covariance Q diag(v) Q^T; the exact posterior differs (pinned)."""
    y = np.array([1.0, 0.6, -0.4])
    yp = torch.from_numpy(Q.T @ y).expand(N, 3).contiguous()
    rev = eigen_reverse(50)
    if multiply:
        xp = denoise_chain(rev, yp, S2, generator=gen())
    else:  # BROKEN: the chain from y that never multiplies by r
        xp = run_chain(rev, yp.clone(), gen())
    x = xp @ torch.from_numpy(Q).T
    c, v = denoise_rule_closed_form(50)
    rule_mean, rule_cov = Q @ np.diag(c) @ Q.T @ y, Q @ np.diag(v) @ Q.T
    exact_mean = C @ np.linalg.solve(C + S2 * np.eye(3), y)
    exact_cov = C - C @ np.linalg.solve(C + S2 * np.eye(3), C)
    assert (moments_mismatch(x, rule_mean, rule_cov) == []) is multiply
    assert moments_mismatch(x, exact_mean, exact_cov)  # the rule is not the exact posterior

"""benchmarks/swissroll_ceiling.py: the posterior moments against importance sampling, and the
ceiling's ordering (a full-covariance kernel can only do better than a diagonal one)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import swissroll_ceiling as sc  # noqa: E402

from diffusion.data.toy import swissroll_raw, swissroll_scaler  # noqa: E402
from diffusion.processes.schedules import baseline_beta, geometric_beta  # noqa: E402


def test_posterior_covariance_matches_importance_sampling():
    """Cov(x^0 | x^t) by quadrature over the roll equals the self-normalized importance-sampling
    estimate with x^0 drawn from the data and weights q(x^t | x^0)."""
    sigma = 0.25
    scaler = swissroll_scaler(sigma)
    sd = sigma / scaler.scale
    c, log_w = sc.roll_grid(sigma, scaler.scale, scaler.shift)
    ab = torch.tensor(0.97, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    x0 = (swissroll_raw(2_000_000, sigma, gen) - scaler.shift) / scaler.scale
    xt = torch.tensor([[0.3, -0.5], [1.2, 0.4]], dtype=torch.float64)
    cov = sc.posterior_cov_x0(xt, ab, c, log_w, sd)
    for i in range(2):
        logw = -0.5 * ((xt[i] - ab.sqrt() * x0) ** 2).sum(1) / (1 - ab)
        w = torch.softmax(logw, 0)
        assert 1 / (w**2).sum() > 2_000  # enough effective samples
        mean = (w[:, None] * x0).sum(0)
        d = x0 - mean
        ref = torch.einsum("n,ni,nj->ij", w, d, d)
        torch.testing.assert_close(cov[i], ref, rtol=0.08, atol=2e-4)


def test_full_beats_diagonal_and_geometric_beats_baseline():
    sigma, T, n = 0.25, 40, 64
    scaler = swissroll_scaler(sigma)
    gen = torch.Generator().manual_seed(1)
    x0 = (swissroll_raw(n, sigma, gen) - scaler.shift) / scaler.scale
    eps = torch.randn(T, n, 2, generator=gen, dtype=torch.float64)
    c, log_w = sc.roll_grid(sigma, scaler.scale, scaler.shift)
    sd = sigma / scaler.scale
    geo = geometric_beta(T, beta1=1e-4)
    k_diag, steps_diag = sc.ceiling_bits(geo, x0, eps, c, log_w, sd)
    k_full, steps_full = sc.ceiling_bits(geo, x0, eps, c, log_w, sd, full=True)
    assert (steps_full <= steps_diag + 1e-12).all() and k_full > k_diag
    k_base, _ = sc.ceiling_bits(baseline_beta(T, beta1=1e-4, beta_max=0.5), x0, eps, c, log_w, sd)
    assert k_diag > k_base + 0.5
    assert math.isfinite(float(k_full)) and float(k_full) < -0.5  # below the truth, -0.92

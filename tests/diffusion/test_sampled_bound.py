"""The sampled evaluation (k random t per example) is an unbiased estimate of K: its mean over
many draws matches the exact sum over t, for Gaussian and binomial diffusion."""

from __future__ import annotations

import math

import pytest
import torch
from engine_helpers import make_model

from diffusion.evaluation.bound import evaluate_bound, sampled_bound


@pytest.mark.parametrize("kind,D", [("gaussian", 2), ("binomial", 6)])
def test_sampled_bound_is_unbiased_and_covers_every_t(kind, D):
    T, N, k, R = 8, 32, 2, 150
    model = make_model(kind, T=T, D=D)
    g = torch.Generator().manual_seed(1)
    if kind == "gaussian":
        x0 = torch.randn(N, D, generator=g, dtype=torch.float64)
    else:
        x0 = (torch.rand(N, D, generator=g) < 0.3).double()
    exact, sampled = [], []
    for r in range(R):
        exact.append(
            float(evaluate_bound(model, x0, torch.Generator().manual_seed(r)).per_example.mean())
        )
        terms = sampled_bound(model, x0, torch.Generator().manual_seed(10_000 + r), k)
        sampled.append(float(terms.per_example.mean()))
    e, s = torch.tensor(exact), torch.tensor(sampled)
    se = math.sqrt(float(e.var()) / R + float(s.var()) / R)
    assert abs(float(s.mean() - e.mean())) < 4 * se, (float(s.mean()), float(e.mean()), se)
    assert float(s.var()) > float(e.var())  # fewer terms: more spread, in the standard error
    # N k = 64 draws over 7 values of t: every t is hit, so the profile has no gaps
    terms = sampled_bound(model, x0, torch.Generator().manual_seed(0), k)
    assert terms.kl_profile[0] == 0 and torch.isfinite(terms.kl_profile).all()


def test_k_of_all_timesteps_is_the_exact_sum():
    model = make_model("gaussian", T=6)
    x0 = torch.randn(10, 2, dtype=torch.float64)
    a = evaluate_bound(model, x0, torch.Generator().manual_seed(3), t_per_example=5)
    b = evaluate_bound(model, x0, torch.Generator().manual_seed(3))
    assert torch.equal(a.per_example, b.per_example)

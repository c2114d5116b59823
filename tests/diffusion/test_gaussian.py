"""Gaussian diffusion against closed forms, torch.distributions, quadrature and Monte Carlo
(model.md section 13)."""

from __future__ import annotations

import math

import torch
from engine_helpers import make_model, oracle_model
from torch.distributions import Normal, kl_divergence

from diffusion.evaluation.bound import LN2, evaluate_bound, importance_log_likelihood
from diffusion.processes.gaussian import GaussianDiffusion, alpha_bar, normal_kl, normal_log_prob

G = GaussianDiffusion()


def test_kl_and_log_prob_match_torch_distributions(gen):
    m1, m2 = torch.randn(50, 3, generator=gen).double(), torch.randn(50, 3, generator=gen).double()
    v1 = torch.rand(50, 3, generator=gen).double() + 0.05
    v2 = torch.rand(50, 3, generator=gen).double() + 0.05
    ref = kl_divergence(Normal(m1, v1.sqrt()), Normal(m2, v2.sqrt())).sum(1)
    torch.testing.assert_close(normal_kl(m1, v1, m2, v2), ref)
    x = torch.randn(50, 3, generator=gen).double()
    torch.testing.assert_close(normal_log_prob(x, m1, v1), Normal(m1, v1.sqrt()).log_prob(x).sum(1))


def test_edge_terms_equal_entropy_form_of_eq14(gen):
    """edge = H_q(X^T|X^0) - H_q(X^1|X^0) - H_p(X^T) + E[log pi(x^0) - log pi(x^1)] with the
    entropies from torch.distributions and the cross-entropies by Monte Carlo."""
    beta = torch.tensor([0.01, 0.2, 0.3, 0.5], dtype=torch.float64)
    x0 = torch.tensor([[0.7, -1.3, 2.0]], dtype=torch.float64)
    abar_T = alpha_bar(beta)[-1]
    h_T = Normal(0.0, (1 - abar_T).sqrt()).entropy() * 3
    h_1 = Normal(0.0, beta[0].sqrt()).entropy() * 3
    n = 400_000
    xs = x0.expand(n, 3)
    xT = G.q_sample(xs, torch.full((n,), 4), beta, gen)
    x1 = G.q_sample(xs, torch.full((n,), 1), beta, gen)
    pi = Normal(0.0, 1.0)
    cross_T = -pi.log_prob(xT).sum(1)  # H_p(X^T) integrand
    terms = -cross_T + pi.log_prob(xs).sum(1) - pi.log_prob(x1).sum(1)
    mc = h_T - h_1 + terms.mean()
    se = terms.std() / math.sqrt(n)
    assert abs(G.edge_terms(x0, beta)[0] - mc) < 4 * se + 1e-9


def test_marginal_equals_composed_kernels(gen):
    beta = torch.tensor([0.02, 0.1, 0.25, 0.4, 0.5], dtype=torch.float64)
    n = 200_000
    x = torch.full((n, 1), 1.5, dtype=torch.float64)
    for step in range(1, 6):
        x = G.q_step_sample(x, torch.full((n,), step), beta, gen)
        mean, var = G.q_mean_var(x[:1] * 0 + 1.5, torch.tensor([step]), beta)
        assert abs(x.mean() - mean[0, 0]) < 4 * math.sqrt(var[0, 0] / n)
        assert abs(x.var() - var[0, 0]) < 4 * var[0, 0] * math.sqrt(2 / n)


def test_posterior_equals_numerical_bayes():
    beta = torch.tensor([0.05, 0.2, 0.3, 0.45], dtype=torch.float64)
    x0, xt, t = 0.8, -0.4, 3
    grid = torch.linspace(-10, 10, 200_001, dtype=torch.float64)
    abar = alpha_bar(beta)
    prior = Normal(abar[t - 2].sqrt() * x0, (1 - abar[t - 2]).sqrt()).log_prob(grid)
    lik = Normal((1 - beta[t - 1]).sqrt() * grid, beta[t - 1].sqrt()).log_prob(torch.tensor(xt))
    w = torch.exp(prior + lik)
    w = w / torch.trapezoid(w, grid)
    mean = torch.trapezoid(w * grid, grid)
    var = torch.trapezoid(w * (grid - mean) ** 2, grid)
    m, v = G.q_posterior(
        torch.tensor([[x0]]).double(), torch.tensor([[xt]]).double(), torch.tensor([t]), beta
    )
    torch.testing.assert_close(m[0, 0], mean, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(v[0, 0], var, rtol=1e-6, atol=1e-8)


def test_analytic_bound_equals_monte_carlo_log_ratio(gen):
    """K (exact in t) = mean of log p(x^{0..T}) / q(x^{1..T}|x^0) along forward trajectories."""
    model = make_model("gaussian", T=6, D=2)
    x0 = torch.randn(4000, 2, generator=gen).double() * 0.7 + 0.3
    k = evaluate_bound(model, x0, gen).per_example
    w = importance_log_likelihood(model, x0, 1, gen)
    se = math.sqrt(k.var() / len(k) + w.var() / len(w))
    assert abs(k.mean() - w.mean()) < 4 * se


def test_oracle_bound_is_true_log_likelihood(gen):
    """Data from pi with the exact reverse kernel: K = -(D/2) log2(2 pi e) up to MC error."""
    model = oracle_model("gaussian", T=10, D=3, beta1=0.02)
    x0 = torch.randn(20_000, 3, generator=gen)
    terms = evaluate_bound(model, x0, gen)
    k_bits = terms.per_example / LN2
    truth = -1.5 * math.log2(2 * math.pi * math.e)
    assert abs(k_bits.mean() - truth) < 4 * k_bits.std() / math.sqrt(len(k_bits))
    assert abs(terms.log_null.mean() / LN2 - truth) < 0.05


def test_paper_parameterization():
    """zS = 0 gives Sigma = beta_t; the mean is (x - zM)(1 - Sigma) + zM; t = 1 is fixed."""
    beta = torch.tensor([0.01, 0.2, 0.3], dtype=torch.float64)
    xt = torch.tensor([[1.0], [1.0]], dtype=torch.float64)
    z = torch.tensor([[[0.5, 0.0]], [[0.5, 3.0]]], dtype=torch.float64)
    mean, var = G.p_mean_var(xt, torch.tensor([2, 1]), z, beta)
    torch.testing.assert_close(var[0, 0], beta[1])
    torch.testing.assert_close(mean[0, 0], (1 - 0.5) * (1 - beta[1]) + 0.5)
    torch.testing.assert_close(var[1, 0], beta[0])
    torch.testing.assert_close(mean[1, 0], (1 - beta[0]).sqrt())

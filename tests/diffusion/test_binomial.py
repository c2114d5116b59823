"""Binomial diffusion against torch.distributions, enumeration and Monte Carlo (model.md 7, 13)."""

from __future__ import annotations

import dataclasses
import itertools
import math

import torch
from engine_helpers import make_model, oracle_model
from torch.distributions import Bernoulli, kl_divergence

from diffusion.evaluation.bound import LN2, evaluate_bound, importance_log_likelihood
from diffusion.processes.binomial import BinomialDiffusion, bernoulli_kl_logits
from diffusion.processes.schedules import baseline_beta

M = 0.2
B = BinomialDiffusion(M)


def test_bernoulli_kl_and_entropy_match_torch(gen):
    q = torch.rand(200, generator=gen).double()
    q[:3] = torch.tensor([0.0, 1.0, 0.5])
    a = torch.randn(200, generator=gen).double() * 3
    ref = kl_divergence(Bernoulli(probs=q), Bernoulli(logits=a))
    torch.testing.assert_close(bernoulli_kl_logits(q, a), ref)
    # entropy = KL to itself subtracted from cross-entropy: H(q) = -xlogx terms
    ent = -(torch.special.xlogy(q, q) + torch.special.xlogy(1 - q, 1 - q))
    torch.testing.assert_close(ent, Bernoulli(probs=q).entropy())


def test_baseline_marginal_closed_form():
    """With beta_1 = 1/T: q(x^t = 1 | x^0) = x^0 (T - t)/T + m t/T and x^T ~ pi exactly."""
    T = 10
    beta = baseline_beta(T, beta1=1 / T)
    x0 = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    for t in range(T + 1):
        p = B.q_prob(x0, torch.tensor([t]), beta)
        expect = torch.tensor([[M * t / T, (T - t) / T + M * t / T]], dtype=torch.float64)
        torch.testing.assert_close(p, expect)


def test_marginal_equals_composed_kernels(gen):
    beta = torch.tensor([0.05, 0.2, 0.3, 0.5], dtype=torch.float64)
    n = 100_000
    x = torch.ones(n, 1, dtype=torch.float64)
    for step in range(1, 5):
        x = B.q_step_sample(x, torch.full((n,), step), beta, gen)
        p = B.q_prob(torch.ones(1, 1), torch.tensor([step]), beta)[0, 0]
        assert abs(x.mean() - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_posterior_equals_enumeration():
    beta = torch.tensor([0.05, 0.2, 0.3, 0.5], dtype=torch.float64)
    for x0, xt, t in itertools.product((0.0, 1.0), (0.0, 1.0), (2, 3, 4)):
        joint = {}
        for a in (0.0, 1.0):  # x^{t-1}
            p_prev = B.q_prob(torch.tensor([[x0]]), torch.tensor([t - 1]), beta)[0, 0]
            prior = p_prev if a else 1 - p_prev
            q1 = a * (1 - beta[t - 1]) + M * beta[t - 1]
            joint[a] = prior * (q1 if xt else 1 - q1)
        expect = joint[1.0] / (joint[0.0] + joint[1.0])
        got = B.q_posterior(torch.tensor([[x0]]), torch.tensor([[xt]]), torch.tensor([t]), beta)
        torch.testing.assert_close(got[0, 0], expect)


def test_perturbation_form():
    """z = 0 gives the forward kernel's form; t = 1 ignores z (fixed first step)."""
    beta = torch.tensor([0.1, 0.25], dtype=torch.float64)
    xt = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    z = torch.zeros(1, 2, 1, dtype=torch.float64)
    p = torch.sigmoid(B.p_logit(xt, torch.tensor([2]), z, beta))
    torch.testing.assert_close(p, torch.tensor([[0.75 + M * 0.25, M * 0.25]]).double())
    p1 = torch.sigmoid(B.p_logit(xt, torch.tensor([1]), z + 5, beta))
    torch.testing.assert_close(p1, torch.tensor([[0.9 + M * 0.1, M * 0.1]]).double())
    p2 = torch.sigmoid(B.p_logit(xt, torch.tensor([2]), z + 1, beta))
    assert (p2 > p).all()


def test_edge_terms_by_enumeration():
    """E_q[log p(x^0|x^1)] - KL(q(x^T|x^0) || pi) enumerated over x^1 for a 2-D example."""
    beta = torch.tensor([0.1, 0.3, 0.6], dtype=torch.float64)
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    q1 = B.q_prob(x0, torch.tensor([1]), beta)[0]
    l0 = 0.0
    for x1 in itertools.product((0.0, 1.0), repeat=2):
        x1t = torch.tensor(x1, dtype=torch.float64)
        w = torch.prod(torch.where(x1t > 0, q1, 1 - q1))
        f = x1t * (1 - beta[0]) + M * beta[0]
        l0 = l0 + w * Bernoulli(probs=f).log_prob(x0[0]).sum()
    qT = B.q_prob(x0, torch.tensor([3]), beta)[0]
    kl_T = kl_divergence(Bernoulli(probs=qT), Bernoulli(probs=torch.full_like(qT, M))).sum()
    torch.testing.assert_close(B.edge_terms(x0, beta)[0], l0 - kl_T)


def test_analytic_bound_equals_monte_carlo_log_ratio(gen):
    model = make_model("binomial", T=6, D=4, m=M, beta1=1 / 6)
    x0 = (torch.rand(4000, 4, generator=gen) < 0.4).double()
    k = evaluate_bound(model, x0, gen).per_example
    w = importance_log_likelihood(model, x0, 1, gen)
    se = math.sqrt(k.var() / len(k) + w.var() / len(w))
    assert abs(k.mean() - w.mean()) < 4 * se


def test_oracle_bound_is_true_log_likelihood(gen):
    """Data from Bernoulli(m) with p = the forward kernel: K = E log2 pi(x^0) up to MC error."""
    model = oracle_model("binomial", T=12, D=5, m=M, beta1=1 / 12)
    x0 = (torch.rand(20_000, 5, generator=gen) < M).float()
    terms = evaluate_bound(model, x0, gen)
    diff = (terms.per_example - terms.log_null) / LN2
    truth = 5 * (M * math.log2(M) + (1 - M) * math.log2(1 - M))
    assert abs(diff.mean()) < 4 * diff.std() / math.sqrt(len(diff)) + 1e-9
    k_bits = terms.per_example / LN2
    assert abs(k_bits.mean() - truth) < 4 * k_bits.std() / math.sqrt(len(k_bits))


def _direct_forward_logit(x: torch.Tensor, t: torch.Tensor, beta: torch.Tensor, m: float):
    """logit(x (1 - beta_t) + m beta_t) the direct way, per row (no table)."""
    b = beta[t - 1].reshape((-1,) + (1,) * (x.dim() - 1))
    p1, p0 = 1 - (1 - m) * b, m * b
    log_p = torch.where(x > 0.5, torch.log(p1), torch.log(p0))
    log_1mp = torch.where(x > 0.5, torch.log((1 - m) * b), torch.log1p(-p0))
    return log_p - log_1mp


def test_forward_logit_table_is_exact_and_follows_the_schedule():
    """The per-schedule logit table gives the direct formula's numbers bit for bit, and is
    rebuilt for another schedule, for one changed in place (a checkpoint loaded into the
    buffer) and, with gradients, every call (they reach a learned schedule)."""
    T, m = 200, 0.2
    proc = BinomialDiffusion(m)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(64, 20, generator=gen) < 0.3).double()
    t = torch.randint(1, T + 1, (64,), generator=gen)
    beta = baseline_beta(T, beta1=1 / T)
    assert torch.equal(proc.forward_logit(x, t, beta), _direct_forward_logit(x, t, beta, m))
    beta.mul_(0.25)  # in place: the same tensor, new values
    assert torch.equal(proc.forward_logit(x, t, beta), _direct_forward_logit(x, t, beta, m))
    other = beta * 0.5
    assert torch.equal(proc.forward_logit(x, t, other), _direct_forward_logit(x, t, other, m))
    learned = beta.clone().requires_grad_()
    proc.forward_logit(x, t, learned).sum().backward()
    assert learned.grad is not None and learned.grad.abs().sum() > 0


def test_a_binary_data_sets_batches_are_not_tested_for_bits(tmp_path, monkeypatch):
    """A binary data set under the identity scaler is bits by construction (checked when it
    is built): the training step notes its batch as bits instead of testing every batch, and
    the step's numbers are those of the tested batch. Broken versions: a test left in the
    step (the patched `is_bits` is called), a scaled data set taken as bits (`model_bits`)."""
    import diffusion.processes.binomial as binomial  # noqa: PLC0415
    from diffusion.data.base import Scaler  # noqa: PLC0415
    from diffusion.presets import PRESETS  # noqa: PLC0415
    from diffusion.training.train import _Trainer  # noqa: PLC0415

    config = PRESETS["heartbeat-smoke"].with_overrides(["train.batch_size=16"])
    noted = _Trainer(config, tmp_path / "a", torch.device("cpu"), None, None)
    tested = _Trainer(config, tmp_path / "b", torch.device("cpu"), None, None)
    assert noted.bundle.model_bits
    assert not dataclasses.replace(noted.bundle, scaler=Scaler(shift=0.5)).model_bits
    assert not dataclasses.replace(noted.bundle, binary=False).model_bits
    tested.bundle = dataclasses.replace(tested.bundle, binary=False)  # the same data, tested
    calls = []
    real = binomial.is_bits
    monkeypatch.setattr(binomial, "is_bits", lambda x: calls.append(1) or real(x))
    want = [tested.train_step() for _ in range(3)]
    assert len(calls) == 3  # once a batch
    got = [noted.train_step() for _ in range(3)]
    assert len(calls) == 3 and got == want

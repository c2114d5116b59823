"""Schedules (section 2.4.1) and the temporal readout (App. D.2.1)."""

from __future__ import annotations

import math

import pytest
import torch
from engine_helpers import make_model

from diffusion.config import ConfigError, DiffusionConfig
from diffusion.evaluation.bound import evaluate_bound, train_objective
from diffusion.processes.readout import ReadoutLinear, TemporalBasis, apply_readout
from diffusion.processes.schedules import (
    Schedule,
    baseline_beta,
    cosine_beta,
    geometric_beta,
    linear_beta,
    logsnr_beta,
)


def test_baseline_erases_one_T_th_per_step():
    T = 10
    beta = baseline_beta(T, beta1=1 / T)
    abar = torch.cumprod(1 - beta, 0)
    torch.testing.assert_close(abar, (T - torch.arange(1, T + 1).double()) / T)
    capped = baseline_beta(T, beta1=1e-3, beta_max=0.5)
    assert capped[0] == 1e-3 and capped[-1] == 0.5 and capped.dtype == torch.float64


def test_geometric_and_logsnr_shapes():
    """geometric: 1 - abar_t = beta_1 r^(t-1), ending at 1 - abar_T = 1 - 1/(2T); logsnr:
    log(abar_t / (1 - abar_t)) equally spaced between the same two ends."""
    T, b1 = 40, 1e-4
    var = 1 - torch.cumprod(1 - geometric_beta(T, beta1=b1), 0)
    ratio = var[1:] / var[:-1]
    torch.testing.assert_close(ratio, torch.full_like(ratio, (1 - 1 / (2 * T)) / b1) ** (1 / 39))
    torch.testing.assert_close(var[[0, -1]], torch.tensor([b1, 1 - 1 / (2 * T)]).double())
    abar = torch.cumprod(1 - logsnr_beta(T, beta1=b1), 0)
    lsnr = torch.log(abar / (1 - abar))
    step = lsnr[1:] - lsnr[:-1]
    torch.testing.assert_close(step, torch.full_like(step, float(step.mean())))
    torch.testing.assert_close(abar[[0, -1]], torch.tensor([1 - b1, 1 / (2 * T)]).double())


def test_learned_schedule_starts_from_learned_from():
    cfg = DiffusionConfig(
        "gaussian", T=20, schedule="learned", beta1=1e-4, learned_from="geometric"
    )
    torch.testing.assert_close(Schedule(cfg)(), geometric_beta(20, beta1=1e-4))
    fixed = DiffusionConfig("gaussian", T=20, schedule="logsnr", beta1=1e-4)
    torch.testing.assert_close(Schedule(fixed)(), logsnr_beta(20, beta1=1e-4))


@pytest.mark.parametrize("fn", [linear_beta, cosine_beta, geometric_beta, logsnr_beta])
def test_named_schedules_are_valid(fn):
    beta = fn(100, beta1=1e-4)
    assert beta.dtype == torch.float64 and beta[0] == 1e-4
    assert ((beta > 0) & (beta < 1)).all()
    assert torch.cumprod(1 - beta, 0)[-1] < 0.01


def test_learned_schedule_starts_at_baseline_and_keeps_beta1():
    cfg = DiffusionConfig("gaussian", T=20, schedule="learned", beta1=1e-4, J=5)
    sched = Schedule(cfg, TemporalBasis(20, 5))
    torch.testing.assert_close(sched(), baseline_beta(20, beta1=1e-4, beta_max=0.5))
    with torch.no_grad():
        sched.c.add_(0.3)
    assert (
        sched()[0] == 1e-4 and (sched()[1:] > baseline_beta(20, beta1=1e-4, beta_max=0.5)[1:]).all()
    )


def test_learned_schedule_basis_can_be_coarser_than_readout():
    cfg = DiffusionConfig("gaussian", T=20, schedule="learned", J=0, schedule_J=4)
    sched = Schedule(cfg, TemporalBasis(20, 20))
    assert sched.c.shape == (4,) and sched.basis.shape == (19, 4)


def test_gradients_reach_schedule_and_training_it_raises_K(gen):
    """Only the schedule coefficients are trained; K on fixed data and noise must rise."""
    model = make_model("gaussian", T=10, D=2, schedule="learned", J=5, beta1=1e-3, readout_std=0.0)
    x0 = torch.randn(2000, 2, generator=gen).double() * torch.tensor([1.3, 0.3]).double()
    k_before = evaluate_bound(model, x0, torch.Generator().manual_seed(7)).per_example
    opt = torch.optim.Adam([model.schedule.c], lr=0.05)
    for _ in range(60):
        loss = -train_objective(model, x0[:512], gen).mean()
        opt.zero_grad()
        loss.backward()
        assert model.schedule.c.grad is not None and model.schedule.c.grad.abs().sum() > 0
        opt.step()
    k_after = evaluate_bound(model, x0, torch.Generator().manual_seed(7)).per_example
    diff = k_after - k_before
    assert diff.mean() > 4 * diff.std() / math.sqrt(len(diff))


def test_basis_sums_to_one_and_interpolates():
    basis = TemporalBasis(50, 10)
    t = torch.linspace(1, 50, 200)
    g = basis(t)
    torch.testing.assert_close(g.sum(1), torch.ones(200))
    assert (g.argmax(1)[1:] >= g.argmax(1)[:-1]).all()  # bumps move along with t
    torch.testing.assert_close(basis(torch.arange(1, 51)), basis(torch.arange(1.0, 51.0)))
    one = TemporalBasis(8, 8)
    torch.testing.assert_close(one(torch.tensor([3])), torch.eye(8)[2:3])
    torch.testing.assert_close(one(torch.tensor([3.25]))[0, 2:4], torch.tensor([0.75, 0.25]))


def test_log_spaced_basis():
    """Centres evenly spaced in log t: each bump peaks at exp(centre), the first steps get
    bumps of their own, rows sum to 1, and the learned schedule's basis follows the config."""
    T, J = 2000, 40
    basis = TemporalBasis(T, J, "log")
    peaks = torch.exp(basis.centres)
    torch.testing.assert_close(peaks[[0, -1]], torch.tensor([1.0, float(T)]).double())
    t = torch.arange(1, T + 1)
    g = basis(t)
    torch.testing.assert_close(g.sum(1), torch.ones(T))
    assert (g.argmax(1)[1:] >= g.argmax(1)[:-1]).all()
    assert len(set(g[:10].argmax(1).tolist())) >= 6  # t = 1..10 spread over >= 6 bumps
    assert len(set(TemporalBasis(T, J)(t[:10]).argmax(1).tolist())) == 1  # linear: one bump
    cfg = DiffusionConfig("gaussian", T=100, schedule="learned", J=10, basis="log")
    sched = Schedule(cfg)
    torch.testing.assert_close(sched.basis, TemporalBasis(100, 10, "log").matrix()[1:])
    with pytest.raises(ConfigError, match="basis"):
        DiffusionConfig("gaussian", T=100, basis="quadratic")


def test_readout_linear_sparse_equals_dense(gen):
    dense = ReadoutLinear(6, 4, 300, sparse=False, init_scale=1.0)
    sparse = ReadoutLinear(6, 4, 300, sparse=True)
    sparse.load_state_dict(dense.state_dict())
    with torch.no_grad():
        dense.bias.normal_(generator=gen)
        sparse.bias.copy_(dense.bias)
    h = torch.randn(50, 6, generator=gen)
    g = TemporalBasis(300, 300)(torch.rand(50, generator=gen) * 299 + 1)
    assert sparse.J > sparse.GATHER_MIN_J  # the gather path
    torch.testing.assert_close(sparse(h, g), dense(h, g), rtol=1e-5, atol=1e-5)
    big = torch.randn(40_000, 6, generator=gen)  # few distinct steps: the grouped path
    gb = TemporalBasis(300, 300)(torch.randint(1, 31, (40_000,), generator=gen))
    small_blocks = torch.cat(
        [dense(big[i : i + 1000], gb[i : i + 1000]) for i in range(0, 40_000, 1000)]
    )
    torch.testing.assert_close(sparse(big, gb), small_blocks, rtol=1e-4, atol=1e-4)
    y = torch.randn(5, 3, 7, generator=gen)
    gg = torch.softmax(torch.randn(5, 7, generator=gen), 1)
    torch.testing.assert_close(apply_readout(y, gg), torch.einsum("bkj,bj->bk", y, gg))

"""The training step's schedule-derived numbers, tabulated once per schedule (issue 14:
diffusion.processes.gaussian.coefficient_table, BinomialDiffusion's logit, abar and case
tables, diffusion.processes.base.PerSchedule) and its fused KL (diffusion.processes.fused),
against the straightforward computation that looks every number up from beta at each use
(bound_reference.py, the engine before the tables).

t is equal bit for bit. K, KL_t and the gradients agree to float64 rounding: the fused KL
forms the Gaussian reverse mean directly instead of through zM and back, writes the Bernoulli
KL with one log-sigmoid, sums the binomial edge terms by counts of zeros and ones, and a
learned schedule's gradient reaches beta through one gather of the table in another order.
Measured: K and KL within 3e-14 of the batch's largest |K|; gradients within 1e-12 of their
largest entry (the schedule's own, summed over a few dozen terms); 1e-11 is the bound here.
A wrong term (a sign, a factor of the variance, a dropped row gradient) moves them by far more.
"""

from __future__ import annotations

import pytest
import torch
from bound_reference import reference_train_loss, reference_train_terms

import diffusion.training.train as train_module
from diffusion.evaluation.bound import train_terms
from diffusion.presets import PRESETS
from diffusion.processes.base import PerSchedule
from diffusion.processes.binomial import BinomialDiffusion
from diffusion.processes.gaussian import GaussianDiffusion, coefficient_table
from diffusion.processes.schedules import geometric_beta
from diffusion.training.train import _Trainer

CONFIGS = {
    # learned schedule (its gradient flows through the table), importance-sampled t
    "swissroll": PRESETS["swissroll"].with_overrides(
        ["data.n_train=500", "data.n_holdout=50", "network.n_rbf=16", "train.batch_size=64"]
    ),
    # full-covariance kernel, learned schedule
    "swissroll-thin": PRESETS["swissroll-thin"].with_overrides(
        ["data.n_train=500", "data.n_holdout=50", "network.n_rbf=8", "train.batch_size=32"]
    ),
    "v-mean": PRESETS["swissroll-smoke"].with_overrides(["diffusion.mean=v"]),
    "binomial": PRESETS["heartbeat-smoke"].with_overrides(["train.batch_size=32"]),
    "images": PRESETS["digits-smoke"].with_overrides(
        ["train.batch_size=8", "data.n_train=64", "data.n_holdout=16"]
    ),
}


def _terms_and_grads(fn, model, x0, seed, probs):
    model.zero_grad(set_to_none=True)
    k, t, kl = fn(model, x0, torch.Generator().manual_seed(seed), probs)
    k.mean().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return k.detach(), t, kl.detach(), grads


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("importance", [False, True])
def test_tabulated_step_equals_the_straightforward_one(tmp_path, name, importance):
    tr = _Trainer(CONFIGS[name], tmp_path, torch.device("cpu"), None, None)
    model = tr.model
    x0 = tr.bundle.scaler.to_model(tr.bundle.draw_train(32, tr.gen), tr.gen)
    probs = torch.softmax(torch.randn(model.T - 1, dtype=torch.float64), 0) if importance else None
    for seed in (1, 2):  # a second step: the caches hold the first step's numbers
        k, t, kl, grads = _terms_and_grads(train_terms, model, x0, seed, probs)
        k_ref, t_ref, kl_ref, grads_ref = _terms_and_grads(
            reference_train_terms, model, x0, seed, probs
        )
        assert torch.equal(t, t_ref)
        scale = float(k_ref.abs().max())
        torch.testing.assert_close(k, k_ref, rtol=0.0, atol=1e-12 * scale)
        torch.testing.assert_close(kl, kl_ref, rtol=0.0, atol=1e-12 * scale)
        assert grads.keys() == grads_ref.keys()
        for key, g in grads.items():  # float64 rounding (module docstring)
            scale = float(grads_ref[key].abs().max())
            torch.testing.assert_close(
                g, grads_ref[key], rtol=1e-11, atol=1e-11 * scale, msg=f"{name}: {key}"
            )


@pytest.mark.parametrize("name", ["swissroll", "binomial"])
def test_training_trajectory_follows_the_straightforward_step(tmp_path, name, monkeypatch):
    """24 steps of the engine against 24 with the straightforward bound (same seeds): the
    losses agree to 1e-9 relative."""
    config = CONFIGS[name].with_overrides(["train.steps=24", "train.eval_examples=16"])
    fast = _Trainer(config, tmp_path / "fast", torch.device("cpu"), None, None)
    ref = _Trainer(config, tmp_path / "ref", torch.device("cpu"), None, None)
    fast_losses = []
    for _ in range(24):
        fast_losses.append(fast.train_step())
        fast.step += 1
    monkeypatch.setattr(train_module, "train_loss", reference_train_loss)
    ref_losses = []
    for _ in range(24):
        ref_losses.append(ref.train_step())
        ref.step += 1
    for i, (a, b) in enumerate(zip(fast_losses, ref_losses, strict=True)):
        assert abs(a - b) <= 1e-9 * abs(b), f"step {i}: {a!r} != {b!r}"
    c_fast, c_ref = fast.model.schedule(), ref.model.schedule()
    torch.testing.assert_close(c_fast, c_ref, rtol=1e-9, atol=0.0)


def test_per_schedule_cache_follows_the_schedule():
    """Kept for the same tensor; recomputed for another tensor, after an in-place change, for
    a leaf that wants gradients (every call), and where a no-grad value would lose them."""
    calls = []
    cache = PerSchedule(lambda b: calls.append(1) or b * 2)
    beta = geometric_beta(10, beta1=1e-3)
    first = cache(beta)
    assert cache(beta) is first and len(calls) == 1
    beta.mul_(0.5)  # in place: a loaded checkpoint
    assert torch.equal(cache(beta), beta * 2) and len(calls) == 2
    other = beta.clone()
    cache(other)
    assert len(calls) == 3
    leaf = beta.clone().requires_grad_()
    cache(leaf), cache(leaf)
    assert len(calls) == 5
    learned = leaf * 1.0  # a learned schedule's tensor: one per step
    with torch.no_grad():
        assert not cache(learned).requires_grad
    value = cache(learned)  # with gradients now: not the no-grad value
    assert value.requires_grad and cache(learned) is value and len(calls) == 7


def test_step_rows_are_regathered_for_new_steps():
    """The gathered rows are reused only for the same t tensor (unchanged) and rank."""
    proc = GaussianDiffusion()
    beta = geometric_beta(20, beta1=1e-3)
    table = coefficient_table(beta)
    x = torch.zeros(4, 3, dtype=torch.float64)
    t = torch.tensor([2, 5, 9, 20])
    c = proc.coefficients(beta, t, x)
    assert torch.equal(c.c0.reshape(-1), table[8, t - 1])
    assert proc.coefficients(beta, t, x) is c
    t2 = torch.tensor([3, 3, 3, 3])
    assert torch.equal(proc.coefficients(beta, t2, x).vq.reshape(-1), table[10, t2 - 1])
    t2.fill_(7)  # in place
    assert torch.equal(proc.coefficients(beta, t2, x).vq.reshape(-1), table[10, 6].expand(4))
    assert proc.coefficients(beta, t2, x[:, :, None]).vq.shape == (4, 1, 1)


def test_binomial_tables_follow_the_schedule():
    proc = BinomialDiffusion(0.3)
    beta = geometric_beta(15, beta1=1e-2)
    x0 = torch.ones(3, 4, dtype=torch.float64)
    t = torch.tensor([1, 7, 15])
    abar = torch.cumprod(1 - beta, 0)
    assert torch.equal(proc.q_prob(x0, t, beta)[:, 0], abar[t - 1] + 0.3 * (1 - abar[t - 1]))
    beta.mul_(0.5)
    abar = torch.cumprod(1 - beta, 0)
    assert torch.equal(proc.q_prob(x0, t, beta)[:, 0], abar[t - 1] + 0.3 * (1 - abar[t - 1]))

"""The training step's fast paths (diffusion.training.train._Trainer.train_step) follow the
plain step bit for bit: the same losses at every step and the same final weights, EMA and
optimizer state for a fixed seed.

`plain_step` is the step written plainly (one optimizer update and one EMA lerp per parameter
in a Python loop, the parameters walked through the modules each step, an autocast context
around the network, the importance sampler's running mean and probabilities recomputed from
its definition at each refresh); a change to the fast path that alters any number (EMA decay,
weight or cadence, clipping, the optimizer's arithmetic, the t sampler) fails here with the
first step it differs at.
"""

from __future__ import annotations

import pytest
import torch

from diffusion.evaluation.bound import LN2, train_terms
from diffusion.presets import PRESETS
from diffusion.training.parts import TSampler
from diffusion.training.train import _Trainer, lr_at, schedule_steps

STEPS = 24
CONFIGS = {
    # learned schedule (own lr group, frozen for the first half), importance-sampled t, EMA
    "swissroll": PRESETS["swissroll"].with_overrides(
        [
            "data.n_train=500",
            "data.n_holdout=50",
            "train.batch_size=64",
            f"train.steps={STEPS}",
            "network.n_rbf=16",
            "train.eval_examples=16",
        ]
    ),
    # full-covariance kernel with a dense pathway
    "swissroll-thin": PRESETS["swissroll-thin"].with_overrides(
        [
            "data.n_train=500",
            "data.n_holdout=50",
            "train.batch_size=32",
            f"train.steps={STEPS}",
            "network.n_rbf=8",
            "network.options.dense=[16]",
            "train.eval_examples=16",
        ]
    ),
    # binomial diffusion, RMSprop
    "heartbeat": PRESETS["heartbeat-smoke"].with_overrides(
        [
            "data.n_train=200",
            "train.batch_size=16",
            f"train.steps={STEPS}",
            "train.optimizer=rmsprop",
            "train.t_sampling=importance",
            "train.eval_examples=16",
        ]
    ),
}


def plain_step(tr: _Trainer) -> float:
    """One training step the plain way (the reference for the fast path)."""
    tc = tr.config.train
    lr_scale = lr_at(tr.config, tr.step, None) / tc.lr
    frozen = tr.step / schedule_steps(tr.config) < tc.schedule_warmup
    for group in tr.optimizer.param_groups:
        group["lr"] = 0.0 if frozen and group.get("schedule") else group["base_lr"] * lr_scale
    x = tr.bundle.draw_train(tc.batch_size, tr.gen)
    x0 = tr.bundle.scaler.to_model(x, tr.gen)
    probs = None
    if tr.plain_sq is not None and not bool((tr.plain_count == 0).any()):
        p = tr.plain_sq.sqrt() + 1e-12
        probs = 0.9 * p / p.sum() + 0.1 / len(p)
    with torch.autocast("cpu", enabled=False):
        k, t, kl = train_terms(tr.model, x0, tr.gen, probs)
    if tr.plain_sq is not None:  # every REFRESH steps: the mean KL_t^2 of those steps
        # summed one draw at a time, in the order drawn, across the steps
        for i, v in zip((t - 2).tolist(), kl.detach().double().square().tolist(), strict=True):
            tr.plain_sums[i] = tr.plain_sums.get(i, 0.0) + v
            tr.plain_n[i] = tr.plain_n.get(i, 0) + 1
        tr.plain_pending += 1
        if tr.plain_pending == TSampler.REFRESH:
            for i, total in tr.plain_sums.items():
                mean = total / tr.plain_n[i]
                first = tr.plain_count[i] == 0
                tr.plain_sq[i] = mean if first else 0.9 * tr.plain_sq[i] + 0.1 * mean
                tr.plain_count[i] += tr.plain_n[i]
            tr.plain_sums, tr.plain_n, tr.plain_pending = {}, {}, 0
    loss = -k.mean() / tr.bundle.dims
    tr.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if tc.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(tr.model.parameters(), tc.grad_clip)
    tr.optimizer.step()
    if tr.ema is not None and tr.step % tc.ema_every == 0:  # the decay for the steps since
        decay = min(tc.ema, (1 + tr.step) / (10 + tr.step)) ** (tr.step + 1 - tr.plain_ema_step)
        with torch.no_grad():
            for pe, p in zip(tr.ema.parameters(), tr.model.parameters(), strict=True):
                pe.lerp_(p, 1 - decay)
        tr.plain_ema_step = tr.step + 1
    tr.step += 1
    return float(-k.mean().detach() / LN2 / tr.bundle.unit_divisor)


def plain_optimizer(tr: _Trainer) -> torch.optim.Optimizer:
    """The trainer's optimizer with the single-tensor (per-parameter loop) update."""
    cls = type(tr.optimizer)
    groups = [dict(g, foreach=False) for g in tr.optimizer.param_groups]
    return cls(groups, lr=tr.config.train.lr)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_fast_step_follows_the_plain_step_bit_for_bit(tmp_path, name):
    config = CONFIGS[name]
    fast = _Trainer(config, tmp_path / "fast", torch.device("cpu"), None, None)
    plain = _Trainer(config, tmp_path / "plain", torch.device("cpu"), None, None)
    plain.optimizer = plain_optimizer(plain)
    T = config.diffusion.T
    importance = plain.t_sampler is not None
    plain.plain_sq = torch.zeros(T - 1, dtype=torch.float64) if importance else None
    plain.plain_count = torch.zeros(T - 1, dtype=torch.long) if importance else None
    plain.plain_sums, plain.plain_n, plain.plain_pending = {}, {}, 0
    plain.plain_ema_step = 0
    fast_losses = []
    for _ in range(STEPS):
        fast_losses.append(fast.train_step())
        fast.step += 1
    plain_losses = [plain_step(plain) for _ in range(STEPS)]
    for i, (a, b) in enumerate(zip(fast_losses, plain_losses, strict=True)):
        assert a == b, f"{name}: loss differs first at step {i}: {a!r} != {b!r}"
    if fast.t_sampler is not None:  # importance sampling took over during the steps
        assert fast.t_sampler.probs() is not None
    for label, mf, mp in (("model", fast.model, plain.model), ("ema", fast.ema, plain.ema)):
        for (key, a), b in zip(mf.state_dict().items(), mp.state_dict().values(), strict=True):
            assert torch.equal(a, b), f"{name}: {label}.{key} differs after {STEPS} steps"
    so, sp = fast.optimizer.state_dict()["state"], plain.optimizer.state_dict()["state"]
    for i in so:
        for key in so[i]:
            assert torch.equal(so[i][key], sp[i][key]), f"{name}: optimizer {key} of {i}"

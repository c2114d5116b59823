"""Training end to end: events, checkpoint round-trip, exact resume, finished runs."""

from __future__ import annotations

import json

import pytest
import torch
from engine_helpers import SMOKE

from diffusion.config import ConfigError
from diffusion.inference import load_trained
from diffusion.presets import PRESETS
from diffusion.processes.schedules import geometric_beta
from diffusion.training.events import CheckpointEvent, EvalEvent, GalleryEvent, StepEvent
from diffusion.training.train import train


def weights(run_dir) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    return {
        **{f"m.{k}": v for k, v in ckpt["model"].items()},
        **{f"e.{k}": v for k, v in ckpt["ema"].items()},
    }


def test_events_in_order_and_result(tmp_path):
    events = []
    result = train(SMOKE, tmp_path / "run", on_event=events.append)
    kinds = [type(e) for e in events]
    assert kinds.count(StepEvent) == 6 and kinds.count(EvalEvent) == 2
    assert kinds[-2:] == [GalleryEvent, CheckpointEvent]
    steps = [e.step for e in events]
    assert steps == sorted(steps)
    ev = [e for e in events if isinstance(e, EvalEvent)][-1]
    assert len(ev.kl_profile_bits) == SMOKE.diffusion.T and ev.kl_profile_bits[0] == 0.0
    assert len(ev.beta) == SMOKE.diffusion.T and ev.unit == "bits/example"
    assert ev.true_ll_bits is not None and ev.k_holdout.stderr_bits > 0
    assert abs(ev.k_minus_lnull_bits - (ev.k_holdout.bits - ev.l_null_bits)) < 1e-9
    gal = [e for e in events if isinstance(e, GalleryEvent)][0]
    assert gal.samples.shape == (16, 2) and gal.kind == "points"
    assert result.status == "done" and result.k_holdout == ev.k_holdout
    assert json.loads((tmp_path / "run" / "config.json").read_text())["name"] == SMOKE.name
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["seed"] == SMOKE.train.seed and record["scaler"]["scale"] > 1
    again = train(SMOKE, tmp_path / "run", on_event=events.append)  # finished: returns at once
    assert again.status == "done" and again.k_holdout == result.k_holdout


def test_stop_and_resume_is_bit_identical(tmp_path):
    train(SMOKE, tmp_path / "straight")
    calls = {"n": 0}

    def stop_at_half() -> bool:
        calls["n"] += 1
        return calls["n"] > SMOKE.train.steps // 2

    first = train(SMOKE, tmp_path / "resumed", should_stop=stop_at_half)
    assert first.status == "stopped" and first.step == SMOKE.train.steps // 2
    second = train(SMOKE, tmp_path / "resumed")
    assert second.status == "done"
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert second.k_holdout == train(SMOKE, tmp_path / "straight").k_holdout


def test_checkpoint_round_trip(tmp_path):
    cfg = SMOKE.with_overrides(["diffusion.schedule=learned", "train.ema=0"])
    train(cfg, tmp_path / "run")
    trained = load_trained(tmp_path / "run", device="cpu")
    assert trained.config == cfg and trained.step == cfg.train.steps
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    for key, value in trained.model.state_dict().items():
        assert torch.equal(value, ckpt["model"][key]), key
    gen = torch.Generator().manual_seed(0)
    res = trained.sample(8, generator=gen, return_trajectory=True)
    assert res.samples.shape == (8, 2) and res.trajectory.shape[1:] == (8, 2)
    est = trained.bound(k=1)
    assert est.unit == "bits/example" and est.stderr_bits > 0


def test_other_config_in_same_dir_is_refused(tmp_path):
    train(SMOKE, tmp_path / "run")
    with pytest.raises(ConfigError, match="different run"):
        train(SMOKE.with_overrides(["diffusion.T=12"]), tmp_path / "run")


def test_binomial_smoke_run(tmp_path):
    cfg = PRESETS["heartbeat-smoke"].with_overrides(["train.steps=10", "train.eval_every=0"])
    events = []
    result = train(cfg, tmp_path / "hb", on_event=events.append)
    assert result.status == "done" and result.k_holdout.unit == "bits/seq"
    gal = [e for e in events if isinstance(e, GalleryEvent)][0]
    assert gal.kind == "sequences" and set(gal.samples.ravel().tolist()) <= {0, 1}


def test_learned_schedule_stays_frozen_during_its_warmup(tmp_path):
    """With schedule_warmup = 0.5 the beta coefficients are exactly the initial ones (the
    geometric schedule they start from) at the half-way checkpoint, and move after it."""
    cfg = SMOKE.with_overrides(
        [
            "diffusion.schedule=learned",
            "diffusion.learned_from=geometric",
            "train.schedule_lr=0.05",
            "train.schedule_warmup=0.5",
            "train.eval_every=0",
        ]
    )
    stops = iter(range(1000))
    train(cfg, tmp_path / "run", should_stop=lambda: next(stops) >= 12)
    half = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert half["step"] == 12 and (half["model"]["schedule.c"] == 0).all()
    torch.testing.assert_close(
        half["model"]["schedule.baseline"],
        geometric_beta(cfg.diffusion.T, beta1=cfg.diffusion.beta1),
    )
    train(cfg, tmp_path / "run")
    end = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert end["step"] == 24 and (end["model"]["schedule.c"][1:] != 0).all()  # c_1: t = 1


def test_continued_run_goes_on_at_the_lr_it_stopped_at(tmp_path):
    """A finished run continued for more steps (train.steps grows, train.lr_steps keeps the
    schedule's length, as db.Store.extend_run writes it) trains on at lr_final: the lr after
    the join equals the lr before it, where a schedule recomputed over the new total would
    jump back up."""
    from diffusion.training.parts import lr_at

    first = SMOKE.with_overrides(["train.log_every=1", "train.lr_schedule=cosine"])
    assert first.train.lr > first.train.lr_final
    before = []
    train(first, tmp_path / "run", on_event=before.append)
    more = first.with_overrides(["train.steps=48", "train.lr_steps=24"])
    after = []
    result = train(more, tmp_path / "run", on_event=after.append)
    assert result.status == "done" and result.step == 48
    old = [e for e in before if isinstance(e, StepEvent)]
    new = [e for e in after if isinstance(e, StepEvent)]
    assert old[-1].step == 24 and new[0].step == 25
    assert old[-1].lr == pytest.approx(first.train.lr_final)
    assert new[0].lr == pytest.approx(old[-1].lr) and new[-1].lr == pytest.approx(old[-1].lr)
    stretched = lr_at(first.with_overrides(["train.steps=48"]), 25)  # the old behaviour
    assert stretched > 1.5 * old[-1].lr
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    lrs = [g["lr"] for g in ckpt["optimizer"]["param_groups"] if not g.get("schedule")]
    assert lrs and lrs == pytest.approx([first.train.lr_final] * len(lrs))  # what it used


def test_a_resumed_run_cannot_change_its_lr_schedule_length(tmp_path):
    train(SMOKE, tmp_path / "run")
    with pytest.raises(ConfigError, match="lr_steps"):
        train(SMOKE.with_overrides(["train.steps=40", "train.lr_steps=30"]), tmp_path / "run")


def test_sampler_accumulators_and_lagging_average_resume_exactly(tmp_path):
    """Stopped at step 13 (the importance sampler 3 steps into its 10-step accumulation, the
    weight average 3 steps behind the weights: ema_every = 10) and resumed, a 25-step run
    ends bit-identical to one that never stopped, the average having taken in the last 5
    steps exactly once (a finished run trained again is left as it was). Broken versions
    this catches: accumulators or ema_step not kept in the checkpoint (the resumed run
    refreshes p(t) or updates the average at other steps), a catch-up applied again on a
    second call."""
    cfg = SMOKE.with_overrides(
        ["train.steps=25", "train.t_sampling=importance", "train.eval_every=0"]
    )
    assert cfg.train.ema_every == 10
    train(cfg, tmp_path / "straight")
    calls = {"n": 0}

    def stop_at_13() -> bool:
        calls["n"] += 1
        return calls["n"] > 13

    assert train(cfg, tmp_path / "resumed", should_stop=stop_at_13).step == 13
    ckpt = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert ckpt["ema_step"] == 11 and ckpt["t_sampler"]["pending"] == 3
    train(cfg, tmp_path / "resumed")
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "resumed")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    done = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    assert done["ema_step"] == 25
    train(cfg, tmp_path / "straight")  # finished: nothing trains, nothing is caught up again
    again = weights(tmp_path / "straight")
    assert all(torch.equal(a[key], again[key]) for key in a)


def test_average_takes_in_every_tenth_step_and_the_last_ones(tmp_path):
    """The weight average's updates in a 25-step run continued to 32 steps: after steps
    n = 0, 10, 20 (standing for 1, 10, 10 steps), the catch-up after n = 24 at the end (4
    steps), then in the continued run after n = 30 (the 6 steps since 25) and its end (1).
    Each update checked against its definition: average <- average + (1 - d^k) (weights -
    average), d = min(ema, (1 + n)/(10 + n)), k the steps it stands for. Broken versions: a
    decay not raised to k, or raised to the cadence (10) where fewer steps passed (the first
    update, the catch-ups, the first update of the continued run), no catch-up at the end,
    an update at other steps."""
    from diffusion.training import train as train_module

    seen: list[tuple[int, int]] = []
    real = train_module._Trainer.update_ema

    def spy(self, n):
        k = n + 1 - self.ema_step
        seen.append((n, k))
        before = [p.detach().clone() for p in self.ema_params]
        real(self, n)
        w = 1 - min(self.config.train.ema, (1 + n) / (10 + n)) ** k
        for b, e, m in zip(before, self.ema_params, self.params, strict=True):
            torch.testing.assert_close(e, b + w * (m.detach() - b), rtol=1e-6, atol=1e-7)

    cfg = SMOKE.with_overrides(["train.steps=25", "train.eval_every=0"])
    train_module._Trainer.update_ema = spy
    try:
        train(cfg, tmp_path / "run")
        train(cfg.with_overrides(["train.steps=32"]), tmp_path / "run")
    finally:
        train_module._Trainer.update_ema = real
    assert seen == [(0, 1), (10, 10), (20, 10), (24, 4), (30, 6), (31, 1)]


def test_the_loss_is_read_only_at_the_steps_that_log_it(tmp_path):
    """On a GPU each read of the loss waits for its step; a trainer that read it every step
    (not only every log_every) would stop the GPU's queue from running ahead."""
    from diffusion.training.train import _Trainer

    trainer = _Trainer(SMOKE, tmp_path, torch.device("cpu"), None, None)
    reads = []
    real = trainer.loss_bits
    trainer.loss_bits = lambda k: reads.append(trainer.step) or real(k)
    trainer.start_clock()
    for _ in range(9):
        trainer.advance()
    assert reads == [4, 8]  # log_every = 4

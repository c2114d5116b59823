"""Training end to end: events, checkpoint round-trip, exact resume, finished runs."""

from __future__ import annotations

import json

import pytest
import torch

from diffusion.config import ConfigError
from diffusion.inference import load_trained
from diffusion.presets import PRESETS
from diffusion.processes.schedules import geometric_beta
from diffusion.training.events import CheckpointEvent, EvalEvent, GalleryEvent, StepEvent
from diffusion.training.train import train

SMOKE = PRESETS["swissroll-smoke"].with_overrides(
    [
        "train.steps=24",
        "train.log_every=4",
        "train.eval_every=12",
        "train.eval_examples=64",
        "train.gallery_size=16",
        "data.n_train=500",
        "data.n_holdout=64",
    ]
)


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

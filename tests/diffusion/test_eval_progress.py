"""Evaluations report their progress and can be cancelled; a cancelled final evaluation keeps
the trained checkpoint, and resuming evaluates to the same number as an uninterrupted run."""

from __future__ import annotations

import torch

from diffusion.presets import PRESETS
from diffusion.training.events import CheckpointEvent, EvalEvent, EvalProgressEvent, GalleryEvent
from diffusion.training.train import train

SMOKE = PRESETS["swissroll-smoke"].with_overrides(
    [
        "train.steps=8",
        "train.log_every=4",
        "train.eval_every=0",
        "train.eval_examples=40",
        "train.gallery_size=8",
        "data.n_train=200",
        "data.n_holdout=40",
    ]
)


def test_final_evaluation_reports_every_block_up_to_t_T(tmp_path):
    events = []
    result = train(SMOKE, tmp_path / "run", on_event=events.append)
    progress = [e for e in events if isinstance(e, EvalProgressEvent)]
    T = SMOKE.diffusion.T
    for phase in ("train", "holdout"):
        seen = [e for e in progress if e.phase == phase]
        assert seen, phase
        assert seen[-1].t_done == T and seen[-1].examples_done == seen[-1].examples_total == 40
        assert all(e.T == T and 2 <= e.t_done <= T and e.step == 8 for e in seen)
        assert [e.examples_done for e in seen] == sorted(e.examples_done for e in seen)
    # every progress event comes before the evaluation it reports on
    first_eval = next(i for i, e in enumerate(events) if isinstance(e, EvalEvent))
    assert events.index(progress[-1]) < first_eval
    assert result.status == "done"
    gallery = next(e for e in events if isinstance(e, GalleryEvent))
    assert gallery.reference is not None and gallery.reference.shape == (200, 2)  # n_train


def test_cancel_during_final_evaluation_keeps_checkpoint_and_resumes(tmp_path):
    straight = train(SMOKE, tmp_path / "straight")
    events: list = []
    stop = {"now": False}

    def on_event(event) -> None:
        events.append(event)
        if isinstance(event, EvalProgressEvent):
            stop["now"] = True  # the user presses Cancel once the evaluation is under way

    first = train(SMOKE, tmp_path / "run", on_event=on_event, should_stop=lambda: stop["now"])
    assert first.status == "stopped" and first.step == SMOKE.train.steps
    assert first.info["stopped_in"] == "evaluation"
    assert not any(isinstance(e, EvalEvent) for e in events)
    assert isinstance(events[-1], CheckpointEvent) and events[-1].step == SMOKE.train.steps
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == SMOKE.train.steps and not ckpt["done"]
    resumed = train(SMOKE, tmp_path / "run")  # evaluates only; no training step is repeated
    assert resumed.status == "done"
    assert resumed.k_holdout == straight.k_holdout

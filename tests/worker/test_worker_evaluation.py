"""A real worker: the final evaluation is watched (its progress line) and cancelled (the run
keeps its checkpoint and says so); a finished run continues for more steps from it."""

from __future__ import annotations

import pytest
from worker_lab import Lab

from db.access import SYSTEM
from db.entities import CANCELLED, DONE
from worker import api

pytestmark = pytest.mark.services


def test_final_evaluation_reports_progress_and_cancels(lab: Lab) -> None:
    lab.start_worker()
    # examples per evaluation subset: long enough (tens of seconds on an idle CPU) that the
    # 1 s progress line is seen and the cancel lands while the evaluation is under way; a thick
    # roll, whose true log-likelihood (quadrature over a grid as fine as sigma) takes seconds
    # rather than a minute to compute for the holdout before training starts
    big = 600_000
    run_id = lab.submit(
        "data.options.sigma=1.0",
        "train.steps=20",
        "train.eval_every=0",
        f"train.eval_examples={big}",
        f"data.n_train={big}",
        f"data.n_holdout={big}",
    )
    message = lab.wait_for(
        "the evaluation's progress line",
        lambda: (m := lab.store.train_job(run_id).message or "").startswith("evaluating") and m,
        timeout=120,
        every=0.05,
    )
    assert "at step 20" in message and f"of {big}" in message and " of 10," in message
    api.cancel(lab.store, run_id)
    run = lab.wait_state(run_id, CANCELLED, timeout=60)
    job = lab.store.train_job(run_id)
    assert job.message.startswith("evaluation cancelled at step 20"), job.message
    ckpt = lab.store.latest_artifact(run_id, "checkpoint", viewer=SYSTEM)
    assert ckpt is not None and ckpt.step == 20 and run.checkpoint_step == 20
    continue_training(lab)


def continue_training(lab: Lab) -> None:
    """Continue training extends a done run from its checkpoint (same worker, one start)."""
    run_id = lab.submit("train.steps=40", "train.log_every=10", "train.eval_every=20")
    lab.wait_state(run_id, DONE, timeout=120)
    owner = lab.store.local_user()
    api.continue_run(lab.store, run_id, 20, viewer=owner)
    run = lab.wait_state(run_id, DONE, timeout=120)
    assert run.step == 60 and run.total_steps == 60 and run.config["train"]["steps"] == 60
    steps = [p.step for p in lab.store.metric_series(run_id, "loss_bits", viewer=SYSTEM)]
    assert steps == [10, 20, 30, 40, 50, 60]  # from the checkpoint: nothing repeated or lost
    ckpt = lab.store.latest_artifact(run_id, "checkpoint", viewer=SYSTEM)
    assert ckpt is not None and ckpt.step == 60

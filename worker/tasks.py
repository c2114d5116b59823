"""Celery tasks: thin. Each takes a job id, and the runner re-reads the row and claims it.

Task names are explicit and stable (they are in queued messages): difflab.train,
difflab.job, difflab.reconcile.
"""

from __future__ import annotations

from typing import Any

from worker.app import (
    JOB_TASK,
    JOB_TIME_LIMIT_S,
    RECONCILE_TASK,
    TRAIN_TASK,
    TRAIN_TIME_LIMIT_S,
    app,
)

_COMMON: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
}


@app.task(
    name=TRAIN_TASK,
    time_limit=TRAIN_TIME_LIMIT_S,
    soft_time_limit=TRAIN_TIME_LIMIT_S - 60,
    **_COMMON,
)
def train(self: Any, job_id: str) -> str:
    """Train the run of `job_id` (resuming from its checkpoint) to DONE, FAILED or CANCELLED."""
    from worker.train_runner import run_train

    return run_train(job_id, self.request.id, self.request.hostname or "worker")


@app.task(
    name=JOB_TASK, time_limit=JOB_TIME_LIMIT_S, soft_time_limit=JOB_TIME_LIMIT_S - 30, **_COMMON
)
def job(self: Any, job_id: str) -> str:
    """A sample, denoise, inpaint or evaluate job against a trained run."""
    from worker.job_runner import run_job

    return run_job(job_id, self.request.id, self.request.hostname or "worker")


@app.task(name=RECONCILE_TASK, time_limit=120, soft_time_limit=100, ignore_result=True)
def reconcile() -> list[str]:
    """Re-enqueue jobs whose messages were lost (also run by every `difflab worker`)."""
    from worker.reconcile import reconcile as run
    from worker.runtime import get_store, reconcile_grace_s

    return run(get_store(), grace_s=reconcile_grace_s())

"""The reconciler: finds jobs whose message was lost and sends them again.

Two cases (design.md, "A job's life", step 5):
- RUNNING with an expired lease: its worker died (kill -9, OOM, lost node). Its message may
  still sit unacknowledged in Redis until the visibility timeout; it is given a new message
  id, so that old message is ignored if it is ever redelivered.
- QUEUED, sent more than `grace_s` ago (or never sent), and its message is nowhere in the
  broker (Redis restarted empty, or the send failed after the commit).
Both go through one conditional update (`Store.requeue_job`), so reconcilers in several
workers at once do no harm.
"""

from __future__ import annotations

import logging

from db.access import SYSTEM
from db.entities import QUEUED
from db.store import Store
from worker import broker
from worker.api import send
from worker.app import redis_url

log = logging.getLogger("difflab.worker")


def reconcile(store: Store, *, url: str | None = None, grace_s: float = 10.0) -> list[str]:
    """Re-enqueue lost jobs; returns their ids."""
    url = url or redis_url()
    stale = store.stale_jobs(queued_grace_s=grace_s)
    if not stale:
        return []
    held = broker.held_task_ids(url)
    requeued = []
    for job in stale:
        if job.state == QUEUED and job.celery_id in held:
            continue  # waiting in the queue or held by a worker: not lost
        new_id = store.requeue_job(job.id, job.celery_id)
        if new_id is None:
            continue  # someone else moved it meanwhile
        fresh = store.get_job(job.id, viewer=SYSTEM)
        send(store, fresh, url=url)
        requeued.append(job.id)
        log.warning(
            "reconciler: re-enqueued %s job %s (run %s) that was %s",
            job.kind,
            job.id,
            job.run_id,
            "lost" if job.state == QUEUED else "orphaned",
        )
    return requeued

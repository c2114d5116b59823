"""The lease a running job holds: renewed by a thread, read by the training loop.

`should_stop()` becomes true when a cancel is requested, when the lease is lost (another
worker took the job over), or when the job must be handed back (`released`): the worker is
shutting down, or this process's parent worker died (an orphaned pool child must not keep
training). A released job is checkpointed, re-queued, and resumes on the next worker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from db.entities import Job
from db.errors import LeaseLost
from db.store import Store
from db.store_jobs import Lease
from worker import runtime

log = logging.getLogger("difflab.worker")
CANCEL_POLL_S = 2.0


class LeaseKeeper(threading.Thread):
    def __init__(self, store: Store, lease: Lease, lease_s: float) -> None:
        super().__init__(name=f"lease-{lease.job_id}", daemon=True)
        self.store, self.lease, self.lease_s = store, lease, lease_s
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self.released = threading.Event()
        self._done = threading.Event()
        self._parent = os.getppid()

    def run(self) -> None:
        next_beat = time.monotonic() + self.lease_s / 3
        next_cancel_check = time.monotonic() + CANCEL_POLL_S
        while not self._done.wait(0.5):
            if time.monotonic() >= next_cancel_check:
                self._check_cancel()
                next_cancel_check = time.monotonic() + CANCEL_POLL_S
            if os.getppid() != self._parent:
                if not self.released.is_set():
                    log.warning(
                        "job %s: parent worker died; handing the job back", self.lease.job_id
                    )
                self.released.set()
            elif runtime.stopping(self._parent):
                self.released.set()
            if time.monotonic() >= next_beat:
                self.beat()
                next_beat = time.monotonic() + self.lease_s / 3

    def beat(self) -> None:
        try:
            if self.store.heartbeat(self.lease, self.lease_s):
                self.cancelled.set()
        except LeaseLost:
            log.warning("job %s: lease lost; stopping", self.lease.job_id)
            self.lost.set()
        except Exception:  # a database hiccup: try again next beat, the lease is long enough
            log.exception("job %s: heartbeat failed", self.lease.job_id)

    def _check_cancel(self) -> None:
        try:
            if self.store.cancel_requested(self.lease.job_id):
                self.cancelled.set()
        except Exception:
            log.exception("job %s: could not read the cancel flag", self.lease.job_id)

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or self.lost.is_set() or self.released.is_set()

    def close(self) -> None:
        self._done.set()


@dataclass(frozen=True)
class Claimed:
    """A job this worker holds: its row at claim time, its lease and the lease's keeper."""

    job: Job
    lease: Lease
    keeper: LeaseKeeper


@contextmanager
def claimed(
    store: Store, job_id: str, celery_id: str, worker_name: str, device: str
) -> Iterator[Claimed | str]:
    """Claim a job for this worker (one conditional update: two workers never both hold it).

    Yields `Claimed` while the lease is kept alive by a thread, or the reason (a str) when the
    job was not taken (already done, held by a live lease, superseded message). On exit the
    keeper stops and the worker's heartbeat row no longer names the job.
    """
    claim = store.claim_job(
        job_id,
        celery_id,
        worker=worker_name,
        host=runtime.host(),
        device=device,
        lease_s=runtime.lease_s(),
    )
    if not claim.ok or claim.job is None:
        log.info("job %s not taken: %s", job_id, claim.reason)
        yield claim.reason
        return
    job = claim.job
    assert job.lease_owner is not None
    lease = Lease(job.id, job.lease_owner)
    keeper = LeaseKeeper(store, lease, runtime.lease_s())
    keeper.start()
    store.set_worker_job(worker_name, job.id)
    try:
        yield Claimed(job, lease, keeper)
    finally:
        keeper.close()
        store.set_worker_job(worker_name, None)

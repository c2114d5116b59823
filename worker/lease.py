"""The lease a running job holds: renewed by a thread, read by the training loop.

`should_stop()` becomes true when a cancel is requested, when the lease is lost (another
worker took the job over), when this process's parent worker died (an orphaned child must
not keep training), or when the worker is shutting down (`released`: the job is then handed
back to the queue and resumes from its checkpoint elsewhere).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from db.errors import LeaseLost
from db.store import Store
from db.store_jobs import Lease
from worker import runtime

log = logging.getLogger("difflab.worker")


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
        while not self._done.wait(0.5):
            if runtime.stopping(self._parent):
                self.released.set()
            if time.monotonic() >= next_beat:
                self.beat()
                next_beat = time.monotonic() + self.lease_s / 3

    def beat(self) -> None:
        if os.getppid() != self._parent:
            log.warning("job %s: parent worker died; stopping", self.lease.job_id)
            self.lost.set()
            return
        try:
            if self.store.heartbeat(self.lease, self.lease_s):
                self.cancelled.set()
        except LeaseLost:
            log.warning("job %s: lease lost; stopping", self.lease.job_id)
            self.lost.set()
        except Exception:  # a database hiccup: try again next beat, the lease is long enough
            log.exception("job %s: heartbeat failed", self.lease.job_id)

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or self.lost.is_set() or self.released.is_set()

    def close(self) -> None:
        self._done.set()

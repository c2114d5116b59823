"""The lease a running job holds: renewed by a thread, read by the training loop.

`should_stop()` becomes true when a cancel is requested, when the lease is lost (another
worker took the job over), or when this process's parent worker died (an orphaned child must
not keep training).
"""

from __future__ import annotations

import logging
import os
import threading

from db.errors import LeaseLost
from db.store import Store
from db.store_jobs import Lease

log = logging.getLogger("difflab.worker")


class LeaseKeeper(threading.Thread):
    def __init__(self, store: Store, lease: Lease, lease_s: float) -> None:
        super().__init__(name=f"lease-{lease.job_id}", daemon=True)
        self.store, self.lease, self.lease_s = store, lease, lease_s
        self.cancelled = threading.Event()
        self.lost = threading.Event()
        self._done = threading.Event()
        self._parent = os.getppid()

    def run(self) -> None:
        while not self._done.wait(self.lease_s / 3):
            self.beat()

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
        return self.cancelled.is_set() or self.lost.is_set()

    def close(self) -> None:
        self._done.set()

"""SQLite transactions and `fork()` exclude each other within a process.

A child forked while another thread of its parent is inside a SQLite transaction inherits a copy
of SQLite's in-process lock table in which that transaction still holds its locks. Nobody in the
child will ever release them, so every write the child attempts waits out the busy timeout and
fails with "database is locked", for the life of the child (the SQLite documentation warns
against carrying a connection across fork; `tests/db/test_fork_gate.py` shows the failure). A
worker is exactly that parent: its heartbeat and reconciler threads write to the store while
Celery forks a new pool process whenever one dies.

The gate lets any number of transactions run at once; a fork waits until none is open (a
transaction lasts at most the busy timeout) and holds new ones back until it is done. It is
registered with `os.register_at_fork`, so it covers every fork in the process: billiard's pool,
`multiprocessing`, and `subprocess` with a `preexec_fn`. A fork from inside a transaction of its
own thread does not wait for that one (it would wait forever).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator

log = logging.getLogger("difflab.db")

# A transaction cannot outlast SQLite's busy timeout by much; past this a fork goes ahead and
# says so rather than hang the process that wants to fork.
FORK_WAIT_S = 60.0


class ForkGate:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._open = 0
        self._forking = False
        self._local = threading.local()

    def _depth(self) -> int:
        return getattr(self._local, "depth", 0)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the gate open for the length of one transaction (nested ones count once each)."""
        with self._cond:
            if self._depth() == 0:  # a nested transaction of this thread must not wait on a fork
                while self._forking:
                    self._cond.wait()
            self._open += 1
        self._local.depth = self._depth() + 1
        try:
            yield
        finally:
            self._local.depth -= 1
            with self._cond:
                self._open -= 1
                if self._open == 0:
                    self._cond.notify_all()

    def before_fork(self) -> None:
        """Wait for other threads' transactions to end; keep new ones out until the fork is done."""
        self._cond.acquire()
        self._forking = True
        deadline = time.monotonic() + FORK_WAIT_S
        while self._open > self._depth():
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("forking while %d SQLite transaction(s) are open", self._open)
                break
            self._cond.wait(left)

    def after_fork_in_parent(self) -> None:
        self._forking = False
        self._cond.notify_all()
        self._cond.release()

    def after_fork_in_child(self) -> None:
        # The child has one thread (the one that forked); the copied lock is still held and the
        # other threads' transactions do not exist here: start afresh, keeping only this
        # thread's own (its `with` blocks still close in the child).
        depth = self._depth()
        self.__init__()  # type: ignore[misc]
        self._open = self._local.depth = depth


GATE = ForkGate()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=GATE.before_fork,
        after_in_parent=GATE.after_fork_in_parent,
        after_in_child=GATE.after_fork_in_child,
    )

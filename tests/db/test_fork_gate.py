"""A process that forks while one of its threads holds a SQLite write transaction: the child
must still be able to write (db/fork_gate.py).

Broken versions this catches (checked by hand): with the gate removed from `StoreBase._scope`
(or with no `os.register_at_fork` hook), the fork happens mid-transaction and the child's
write fails with "database is locked" after its busy timeout, although the parent committed
long before; `test_sqlite_itself_keeps_the_copied_lock` shows that failure with plain sqlite3.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from db.fork_gate import ForkGate
from db.store import Store

HOLD_S = 0.5


def _child_write(path: Path) -> int:
    """0 if a fresh connection in this (forked) process can write within 2 s, else 1."""
    try:
        con = sqlite3.connect(path, isolation_level=None, timeout=2)
        con.execute("BEGIN IMMEDIATE")
        con.execute("CREATE TABLE IF NOT EXISTS child_wrote (x)")
        con.execute("COMMIT")
        return 0
    except sqlite3.OperationalError:
        return 1


def _fork_and_write(path: Path) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os._exit(_child_write(path))
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _hold_write_transaction(begin: Callable[[], Any], held: threading.Event) -> threading.Thread:
    def run() -> None:
        with begin() as execute:
            execute("SELECT 1")
            held.set()
            time.sleep(HOLD_S)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() only")
def test_a_fork_waits_for_the_store_transaction_and_the_child_can_write(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = Store(f"sqlite:///{path}", artifact_root=tmp_path / "artifacts")
    store.upgrade()
    held = threading.Event()

    @contextlib.contextmanager
    def begin() -> Iterator[
        Callable[[str], Any]
    ]:  # a write transaction through the store's own scope (BEGIN IMMEDIATE)
        with store._scope(write=True) as s:
            yield lambda sql: s.execute(text(sql))

    thread = _hold_write_transaction(begin, held)
    held.wait(5)
    t0 = time.monotonic()
    code = _fork_and_write(path)
    waited = time.monotonic() - t0
    thread.join()
    store.dispose()
    assert code == 0, "the forked child could not write: it inherited the transaction's lock"
    assert waited >= HOLD_S * 0.5, f"fork did not wait for the open transaction ({waited:.2f}s)"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() only")
def test_sqlite_itself_keeps_the_copied_lock(tmp_path: Path) -> None:
    """Without the gate (plain sqlite3, no store) the same fork leaves the child unable to write:
    the reason the gate exists. If SQLite ever stops doing this, the gate can go."""
    path = tmp_path / "plain.db"
    con = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=2)
    con.execute("PRAGMA journal_mode=WAL")
    held = threading.Event()

    @contextlib.contextmanager
    def begin() -> Iterator[Callable[[str], Any]]:
        con.execute("BEGIN IMMEDIATE")
        yield con.execute
        con.execute("COMMIT")

    thread = _hold_write_transaction(begin, held)
    held.wait(5)
    code = _fork_and_write(path)
    thread.join()
    assert code == 1


def test_the_gate_lets_transactions_overlap_and_a_fork_from_inside_one_proceeds() -> None:
    gate = ForkGate()
    with gate.transaction(), gate.transaction():  # nested and concurrent: no waiting
        done = threading.Event()

        def other() -> None:
            with gate.transaction():
                done.set()

        threading.Thread(target=other).start()
        assert done.wait(2)
        t0 = time.monotonic()
        gate.before_fork()  # this thread's own two do not block it
        gate.after_fork_in_parent()
        assert time.monotonic() - t0 < 1

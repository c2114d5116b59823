"""Engines and the one transactional session scope used by every store method.

SQLite gets WAL mode, a busy timeout and foreign keys on every connection, and write
transactions start with `BEGIN IMMEDIATE` so that a reader never has to upgrade its lock
(the usual source of "database is locked" under a concurrent writer).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from db.errors import DatabaseUnavailable
from db.fork_gate import GATE
from diffusion.settings import redact

SQLITE_BUSY_TIMEOUT_MS = 30_000
R = TypeVar("R")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def added(s: Session, row: R) -> R:
    """`row`, added to session `s` and flushed (so that its generated columns are set)."""
    s.add(row)
    s.flush()
    return row


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get their folder created and their pragmas set."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    database = parsed.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class StoreBase:
    """Holds the engine; `_scope()` is the single transactional session scope."""

    def __init__(self, url: str, engine: Engine | None = None) -> None:
        self.url = url
        self.engine = engine or make_engine(url)
        self._write_engine = (
            self.engine.execution_options(sqlite_immediate=True)
            if self.engine.dialect.name == "sqlite"
            else self.engine
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextlib.contextmanager
    def _scope(self, write: bool = False) -> Iterator[Session]:
        """A session that commits on success, rolls back on error and always closes.

        On SQLite the session holds the fork gate (db/fork_gate.py): no fork happens while it is
        open, so a forked child never inherits a transaction's locks."""
        with self._fork_gate(), self._session(write) as session:
            yield session

    def _fork_gate(self) -> contextlib.AbstractContextManager[None]:
        """The fork gate for a SQLite transaction (db/fork_gate.py); nothing for a server."""
        return GATE.transaction() if self.dialect == "sqlite" else contextlib.nullcontext()

    @contextlib.contextmanager
    def _session(self, write: bool) -> Iterator[Session]:
        session = Session(self._write_engine if write else self.engine, expire_on_commit=False)
        try:
            yield session
            session.commit()
        except DBAPIError as exc:
            session.rollback()
            if exc.connection_invalidated or _is_connect_error(exc):
                raise DatabaseUnavailable(redact(self.url), _first_line(exc)) from exc
            if _is_read_only(exc):
                raise DatabaseUnavailable(
                    redact(self.url), f"it can only be read, not written ({_first_line(exc)})"
                ) from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def check(self) -> None:
        """Raise `DatabaseUnavailable` (one line, URL named) if the database cannot be reached."""
        try:
            with self._fork_gate(), self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except DBAPIError as exc:
            raise DatabaseUnavailable(redact(self.url), _first_line(exc)) from exc

    def dispose(self) -> None:
        self.engine.dispose()


def _is_read_only(exc: DBAPIError) -> bool:
    msg = str(exc.orig).lower()
    return "readonly database" in msg or "read-only" in msg or "read only" in msg


def _is_connect_error(exc: DBAPIError) -> bool:
    msg = str(exc.orig).lower()
    return any(s in msg for s in ("connection refused", "could not connect", "unable to open"))


def _first_line(exc: DBAPIError) -> str:
    return (str(exc.orig).strip().splitlines() or ["unknown error"])[0]

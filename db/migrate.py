"""Alembic, driven from Python: the migrations live in `db/migrations` (package data)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        cfg.set_main_option(
            "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
        )
        cfg.attributes["engine"] = engine
    return cfg


def _locked(engine: Engine) -> Engine:
    """SQLite: migrate inside BEGIN IMMEDIATE, so concurrent upgrades queue up instead of
    failing with "database is locked" (PostgreSQL takes an advisory lock in env.py)."""
    if engine.dialect.name == "sqlite":
        return engine.execution_options(sqlite_immediate=True)
    return engine


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(_locked(engine)), revision)


def downgrade(engine: Engine, revision: str) -> None:
    command.downgrade(alembic_config(_locked(engine)), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()

"""The models match the migrations, on SQLite and PostgreSQL, and the schema downgrades."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from db import migrate
from db.models import Base
from db.store import Store


def test_models_match_migrations(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                Base.metadata)
    assert diff == []
    assert store.is_current()


def test_downgrade_and_upgrade_again(store: Store) -> None:
    migrate.downgrade(store.engine, "base")
    assert migrate.current_revision(store.engine) is None
    store.upgrade()
    assert store.is_current()
    store.local_user()

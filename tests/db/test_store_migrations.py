"""The models match the migrations, on SQLite and PostgreSQL, and the schema downgrades."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from db import migrate
from db.models import Base
from db.store import Store


def test_models_match_migrations(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
    assert store.is_current()


def test_downgrade_and_upgrade_again(store: Store) -> None:
    migrate.downgrade(store.engine, "base")
    assert migrate.current_revision(store.engine) is None
    store.upgrade()
    assert store.is_current()
    store.local_user()


def test_an_upgrade_commits_once(store: Store) -> None:
    """Every migration of an upgrade in one transaction, on SQLite as on PostgreSQL: with a
    commit after each migration (alembic's default for SQLite), a second migrator waiting on
    the lock ran the next migration while the first still planned to ("duplicate column
    name" in test_concurrent_upgrades_queue_up, seen once under load)."""
    from sqlalchemy import event

    migrate.downgrade(store.engine, "base")
    commits: list[int] = []
    event.listen(store.engine, "commit", lambda conn: commits.append(1))
    migrate.upgrade(store.engine)
    assert store.is_current()
    assert len(commits) == 1


def _upgrade(url: str, root: str) -> None:
    Store(url, artifact_root=root).upgrade()


def test_concurrent_upgrades_queue_up(store: Store, tmp_path) -> None:  # noqa: ANN001
    """Several processes migrating at once (a worker and a CLI command at start-up)."""
    import multiprocessing

    migrate.downgrade(store.engine, "base")
    store.dispose()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_upgrade, args=(store.url, str(tmp_path))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert store.is_current()


def test_migrations_keep_every_run(store: Store) -> None:
    """A migration that rebuilds a table (SQLite batch mode copies it and drops the old one)
    must not cascade: runs, their jobs and metrics survive a downgrade and an upgrade."""
    from db.access import SYSTEM
    from db.entities import MetricPoint

    owner = store.local_user()
    run, job = store.create_run({"name": "kept"}, owner_id=owner.id, name="kept")
    store.append_metrics(run.id, [MetricPoint("loss_bits", s, 1.0 / s, 0.0) for s in (1, 2, 3)])
    migrate.downgrade(store.engine, "0001")
    store.dispose()
    store.upgrade()
    assert store.get_run(run.id, viewer=SYSTEM).name == "kept"
    assert store.get_job(job.id, viewer=SYSTEM).run_id == run.id
    assert len(store.metric_series(run.id, "loss_bits", viewer=SYSTEM)) == 3

"""The Store: the only door to the database. Plain entities out, never ORM rows.

    store = Store.from_env()            # DIFFLAB_DATABASE_URL or SQLite in DIFFLAB_DATA_DIR
    store = Store("postgresql+psycopg://postgres@127.0.0.1/difflab", artifact_root=...)

Methods are grouped by responsibility in `store_runs`, `store_metrics`, `store_artifacts`,
`store_jobs`, `store_users` and `store_workers`; every read takes `viewer=` (a User or SYSTEM).
"""

from __future__ import annotations

from pathlib import Path

from db.artifacts import ArtifactStore
from db.store_artifacts import ArtifactsMixin
from db.store_jobs import JobsMixin
from db.store_metrics import MetricsMixin
from db.store_runs import RunsMixin
from db.store_users import UsersMixin
from db.store_workers import WorkersMixin
from diffusion import settings


class Store(RunsMixin, MetricsMixin, ArtifactsMixin, JobsMixin, UsersMixin, WorkersMixin):
    def __init__(self, url: str, *, artifact_root: Path | str | None = None) -> None:
        super().__init__(url)
        self.artifacts = ArtifactStore(artifact_root or settings.artifact_dir())

    @classmethod
    def from_env(cls) -> Store:
        return cls(settings.database_url(), artifact_root=settings.artifact_dir())

    def upgrade(self) -> None:
        """Migrate the database to the newest schema (Alembic `upgrade head`)."""
        from db.migrate import upgrade

        upgrade(self.engine)

    def is_current(self) -> bool:
        """Whether the database is at the newest migration."""
        from db.migrate import current_revision, head_revision

        return current_revision(self.engine) == head_revision()

    def __repr__(self) -> str:
        return f"Store({settings.redact(self.url)!r})"

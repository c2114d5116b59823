"""AppTest fixtures: a real SQLite store in tmp_path, runs in every state, and a fake queue.

The queue is the one thing replaced: `worker.api.send` and the broker check are patched so
that submitting writes real rows without Redis (the end-to-end tests use the real thing).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from db.store import Store


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    url = f"sqlite:///{tmp_path / 'difflab.db'}"
    monkeypatch.setenv("DIFFLAB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DIFFLAB_DATABASE_URL", url)
    monkeypatch.setenv("DIFFLAB_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("DIFFLAB_TEAM_MODE", "0")
    monkeypatch.setenv("DIFFLAB_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens
    s = Store(url, artifact_root=tmp_path / "artifacts")
    s.upgrade()
    from dashboard.services import _store_for

    _store_for.clear()
    yield s
    _store_for.clear()
    s.engine.dispose()


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A fake queue: records job ids instead of sending them to Redis."""
    import worker.api as api
    from worker import broker

    sent: list[str] = []
    monkeypatch.setattr(broker, "check", lambda url: None)
    monkeypatch.setattr(api, "send", lambda store, job, url=None: sent.append(job.id))
    monkeypatch.setattr(api, "queue_lengths", lambda url=None: {"gpu": 0, "cpu": len(sent)})
    return sent

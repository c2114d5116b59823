"""The `lab` fixtures: real `difflab worker` processes on a Redis db of their own, the CLI
as a subprocess, the store read directly: SQLite in a fresh data folder (`lab`) or a fresh
PostgreSQL database (`pg_lab`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_lab import FAST_ENV, ROOT, Lab

from db.store import Store


def _lab(
    data_dir: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch, database_url: str | None = None
) -> Iterator[Lab]:
    monkeypatch.setenv("DIFFLAB_REDIS_URL", redis_url)
    if database_url:
        monkeypatch.setenv("DIFFLAB_DATABASE_URL", database_url)
    for key, value in FAST_ENV.items():
        monkeypatch.setenv(key, value)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    store = Store.from_env()
    store.upgrade()
    store.dispose()
    lab = Lab(data_dir, redis_url, env)
    try:
        yield lab
    finally:
        lab.stop_all()
        if lab._store is not None:
            lab._store.dispose()


@pytest.fixture
def lab(data_dir: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    yield from _lab(data_dir, redis_url, monkeypatch)


@pytest.fixture
def pg_lab(
    data_dir: Path, redis_url: str, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Lab]:
    yield from _lab(data_dir, redis_url, monkeypatch, postgres_url)

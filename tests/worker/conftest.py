"""The `lab` fixture: real `difflab worker` processes on a Redis db of their own, the CLI
as a subprocess, the store (SQLite in a fresh data folder) read directly."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_lab import FAST_ENV, ROOT, Lab

from db.store import Store


@pytest.fixture
def lab(data_dir: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    monkeypatch.setenv("DIFFLAB_REDIS_URL", redis_url)
    for key, value in FAST_ENV.items():
        monkeypatch.setenv(key, value)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    Store.from_env().upgrade()
    lab = Lab(data_dir, redis_url, env)
    try:
        yield lab
    finally:
        lab.stop_all()
        if lab._store is not None:
            lab._store.dispose()

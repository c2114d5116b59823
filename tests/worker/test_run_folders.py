"""A worker keeps no run folders: after ten runs (done, failed, cancelled) its disk holds none,
and the store still has every finished run's checkpoint (the runner, without Celery)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from db.access import SYSTEM
from db.entities import CANCELLED, DONE, FAILED, RUNNING
from diffusion.presets import load_config
from worker import runtime
from worker.train_runner import run_train

TINY = [
    "data.n_train=64",
    "data.n_holdout=16",
    "train.steps=4",
    "train.batch_size=16",
    "train.log_every=2",
    "train.eval_every=0",
    "train.eval_examples=16",
    "train.gallery_size=4",
]


@pytest.fixture
def store(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DIFFLAB_WORKER_DEVICE", "cpu")
    monkeypatch.setenv("DIFFLAB_LEASE_S", "0.6")  # the keeper sees a cancel within 0.2 s
    s = runtime.get_store()
    s.upgrade()
    yield s
    s.dispose()


def _queue(store, *sets: str) -> tuple[str, str, str]:
    config = load_config("swissroll-smoke", [*TINY, *sets])
    run, job = store.create_run(
        config.to_dict(), owner_id=store.local_user().id, device_request="cpu", total_steps=4
    )
    return run.id, job.id, job.celery_id


def _cancel_once_running(store, run_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if store.get_run(run_id, viewer=SYSTEM).state == RUNNING:
            store.request_cancel(run_id)
            return
        time.sleep(0.05)


def test_no_run_folder_is_left_after_ten_runs(store, data_dir: Path) -> None:
    outcomes = {}
    for i in range(10):
        if i == 3:  # the file of vector data is checked when the worker builds it: FAILED
            sets = ["data.name=vector", 'data.options={"path": "no.npy"}']
        elif i == 6:  # cancelled while it trains
            sets = ["train.steps=100000", "train.checkpoint_every_s=0"]
        else:
            sets = [f"train.seed={i}"]
        run_id, job_id, celery_id = _queue(store, *sets)
        if i == 6:
            threading.Thread(target=_cancel_once_running, args=(store, run_id)).start()
        outcomes[run_id] = run_train(job_id, celery_id, "test-worker")
    assert sorted(outcomes.values()) == sorted([DONE] * 8 + [FAILED, CANCELLED])
    runs = data_dir / "runs"
    assert not runs.exists() or list(runs.iterdir()) == []
    for run_id, outcome in outcomes.items():
        if outcome == DONE:  # what matters is in the artifact store
            assert store.latest_artifact(run_id, "checkpoint", viewer=SYSTEM) is not None

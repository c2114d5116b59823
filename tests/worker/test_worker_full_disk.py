"""A full disk on a worker: the run's checkpoint write fails with ENOSPC and the run ends
FAILED at once with one line saying why (not RUNNING for minutes). The runner without Celery,
a real store on SQLite; only `torch.save` is replaced, by one that writes part of the file and
then fails the way a full disk does."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from db.access import SYSTEM
from db.entities import FAILED
from diffusion.presets import load_config
from diffusion.training import checkpoint as ck
from worker import runtime
from worker.train_runner import run_train


@pytest.fixture
def store(data_dir: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DIFFLAB_WORKER_DEVICE", "cpu")
    monkeypatch.setenv("DIFFLAB_LEASE_S", "5")
    s = runtime.get_store()
    s.upgrade()
    yield s
    s.dispose()


def test_a_full_disk_fails_the_run_with_one_line(store, data_dir: Path, monkeypatch) -> None:
    def save(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", save)
    config = load_config(
        "swissroll-smoke",
        [
            "data.n_train=64",
            "data.n_holdout=16",
            "train.steps=4",
            "train.batch_size=16",
            "train.eval_every=0",
            "train.eval_examples=16",
            "train.gallery_size=4",
        ],
    )
    run, job = store.create_run(
        config.to_dict(), owner_id=store.local_user().id, device_request="cpu", total_steps=4
    )
    assert run_train(job.id, job.celery_id, "test-worker") == FAILED
    failed = store.get_run(run.id, viewer=SYSTEM)
    assert failed.state == FAILED, failed
    assert failed.error and len(failed.error.splitlines()) == 1, failed.error
    assert "No space left on device" in failed.error and ck.CHECKPOINT in failed.error
    assert "Traceback" not in failed.error
    assert store.latest_artifact(run.id, "checkpoint", viewer=SYSTEM) is None
    assert store.latest_artifact(run.id, "final_eval", viewer=SYSTEM) is None
    assert not (data_dir / "runs" / run.id).exists()  # the run folder is not left behind

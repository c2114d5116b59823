"""Stored bytes are checked against their sha256 on every read; the worker falls back to the
previous checkpoint when the newest is corrupt; partial blobs are removed at start-up."""

from __future__ import annotations

import os
import time

import pytest

from db.access import SYSTEM
from db.artifacts import ArtifactStore
from db.errors import CorruptBlob
from db.store import Store
from db.store_jobs import Lease


def test_a_corrupt_or_truncated_blob_is_refused_with_its_file(tmp_path) -> None:
    blobs = ArtifactStore(tmp_path)
    sha = blobs.put(b"x" * 1000)
    path = blobs.path(sha)
    path.write_bytes(b"x" * 500)  # truncated
    with pytest.raises(CorruptBlob, match=str(path)):
        blobs.get(sha)
    assert blobs.put(b"x" * 1000) == sha and blobs.get(sha) == b"x" * 1000  # healed by a put
    path.write_bytes(b"y" * 1000)  # same size, other bytes
    with pytest.raises(CorruptBlob, match="corrupt"):
        blobs.get(sha)


def test_stray_temporary_blobs_are_removed_but_fresh_ones_kept(tmp_path) -> None:
    blobs = ArtifactStore(tmp_path)
    sha = blobs.put(b"kept")
    old = blobs.path(sha).parent / ".tmp-abandoned"
    old.write_bytes(b"\0" * 2048)
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))
    fresh = blobs.path(sha).parent / ".tmp-being-written"  # another host's write in progress
    fresh.write_bytes(b"\0")
    assert blobs.remove_stray_temps() == [old]
    assert not old.exists() and fresh.exists() and blobs.get(sha) == b"kept"


def test_the_worker_resumes_from_the_previous_checkpoint_when_the_newest_is_bad(
    store: Store, tmp_path, monkeypatch
) -> None:
    from worker.train_runner import prepare_run_dir, run_dir

    monkeypatch.setenv("DIFFLAB_DATA_DIR", str(tmp_path / "data"))
    run, job = store.create_run({"name": "c"}, owner_id=store.local_user().id)
    claim = store.claim_job(job.id, job.celery_id, worker="w", host="h", device="cpu", lease_s=60)
    lease = Lease(job.id, claim.job.lease_owner)
    for step in (10, 20, 30):
        store.put_artifact(
            run.id,
            "checkpoint",
            f"ckpt {step}".encode(),
            key="checkpoint.pt",
            media_type="application/octet-stream",
            step=step,
            lease=lease,
            replace_kind=True,
            keep_previous=1,
        )
    kept = store.list_artifacts(run.id, viewer=SYSTEM, kind="checkpoint")
    assert [a.step for a in kept] == [20, 30]  # the last two
    store.artifacts.path(kept[-1].sha256).write_bytes(b"torn")
    step, warning = prepare_run_dir(store, run.id, lease)
    assert step == 20 and "step 30" in warning and "corrupt" in warning
    assert (run_dir(run.id) / "checkpoint.pt").read_bytes() == b"ckpt 20"
    assert [a.step for a in store.list_artifacts(run.id, viewer=SYSTEM, kind="checkpoint")] == [20]


def test_a_read_only_database_is_one_clear_error(tmp_path) -> None:
    from db.errors import DatabaseUnavailable

    path = tmp_path / "ro.db"
    store = Store(f"sqlite:///{path}", artifact_root=tmp_path / "a")
    store.upgrade()
    store.dispose()
    ro = Store(f"sqlite:///file:{path}?mode=ro&uri=true", artifact_root=tmp_path / "a")
    with pytest.raises(DatabaseUnavailable, match="only be read"):
        ro.local_user()
    ro.dispose()

"""Metric series and artifacts on both backends: NaN/inf, uniqueness, truncation, thumbnails."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image
from sqlalchemy.exc import IntegrityError

from db.access import SYSTEM
from db.entities import MetricPoint
from db.errors import InvalidInput, LeaseLost
from db.store import Store
from db.store_jobs import Lease


def make_run(store: Store) -> str:
    run, _ = store.create_run({"name": "m"}, owner_id=store.local_user().id)
    return run.id


def test_non_finite_values_round_trip(store: Store) -> None:
    run_id = make_run(store)
    store.append_metrics(
        run_id,
        [
            MetricPoint("loss_bits", 1, math.nan, 1.0),
            MetricPoint("loss_bits", 2, math.inf, 2.0),
            MetricPoint("loss_bits", 3, -math.inf, 3.0),
            MetricPoint("loss_bits", 4, 0.25, 4.0),
            MetricPoint("beta", 4, None, 4.0, (0.1, math.nan, 0.3)),
        ],
    )
    values = [p.value for p in store.metric_series(run_id, "loss_bits", viewer=SYSTEM)]
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 0.25]
    (beta,) = store.metric_series(run_id, "beta", viewer=SYSTEM)
    assert beta.vector is not None and beta.vector[0] == 0.1 and math.isnan(beta.vector[1])
    assert store.metric_names(run_id, viewer=SYSTEM) == ["beta", "loss_bits"]


def test_series_are_append_only_and_unique(store: Store) -> None:
    run_id = make_run(store)
    store.append_metrics(
        run_id, [MetricPoint("k_holdout_bits", s, s / 10, 0.0) for s in range(1, 11)]
    )
    with pytest.raises(IntegrityError):
        store.append_metrics(run_id, [MetricPoint("k_holdout_bits", 5, 9.0, 0.0)])
    # the failed batch left nothing behind
    assert len(store.metric_series(run_id, "k_holdout_bits", viewer=SYSTEM)) == 10
    assert [
        p.step for p in store.metric_series(run_id, "k_holdout_bits", viewer=SYSTEM, after_step=8)
    ] == [9, 10]
    assert store.truncate_metrics(run_id, 6) == 4
    store.append_metrics(run_id, [MetricPoint("k_holdout_bits", 7, 0.7, 0.0)])
    latest = store.latest_metrics(run_id, viewer=SYSTEM)
    assert latest["k_holdout_bits"].step == 7
    series = store.metrics(run_id, viewer=SYSTEM, names=["k_holdout_bits"])
    assert [p.step for p in series["k_holdout_bits"]] == [1, 2, 3, 4, 5, 6, 7]
    with pytest.raises(InvalidInput):
        store.append_metrics(run_id, [MetricPoint("", 1, 0.0, 0.0)])


def test_writes_are_fenced_by_the_lease(store: Store) -> None:
    run, job = store.create_run({"name": "f"}, owner_id=store.local_user().id)
    claim = store.claim_job(job.id, job.celery_id, worker="w", host="h", device="cpu", lease_s=30)
    lease = Lease(job.id, claim.job.lease_owner)
    store.append_metrics(run.id, [MetricPoint("lr", 1, 0.1, 0.0)], lease=lease)
    with pytest.raises(LeaseLost):
        store.append_metrics(
            run.id, [MetricPoint("lr", 2, 0.1, 0.0)], lease=Lease(job.id, "someone-else")
        )
    with pytest.raises(LeaseLost):
        store.heartbeat(Lease(job.id, "someone-else"), 30)


def png_bytes(size: tuple[int, int] = (300, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_artifacts_thumbnails_and_latest_checkpoint(store: Store) -> None:
    run_id = make_run(store)
    art = store.put_artifact(
        run_id, "gallery_png", png_bytes(), key="g-1.png", media_type="image/png", step=1
    )
    assert art.thumb_sha256 is not None and art.size == len(png_bytes())
    thumb = Image.open(io.BytesIO(store.artifact_bytes(art, viewer=SYSTEM, thumbnail=True)))
    assert max(thumb.size) <= 256
    assert store.artifact_bytes(art.id, viewer=SYSTEM) == png_bytes()
    first = store.put_artifact(
        run_id,
        "checkpoint",
        b"ckpt-1",
        key="checkpoint.pt",
        media_type="application/octet-stream",
        step=10,
        replace_kind=True,
    )
    second = store.put_artifact(
        run_id,
        "checkpoint",
        b"ckpt-2",
        key="checkpoint.pt",
        media_type="application/octet-stream",
        step=20,
        replace_kind=True,
    )
    assert store.list_artifacts(run_id, viewer=SYSTEM, kind="checkpoint") == [second]
    assert not store.artifacts.exists(first.sha256)
    assert store.latest_artifact(run_id, "checkpoint", viewer=SYSTEM) == second
    assert store.truncate_artifacts(run_id, 0, kinds=["gallery_png"]) == 1
    assert not store.artifacts.exists(art.sha256) and not store.artifacts.exists(art.thumb_sha256)
    assert store.gallery(viewer=SYSTEM) == []
    with pytest.raises(InvalidInput):
        store.put_artifact(run_id, "gallery", b"x", key="../escape", media_type="x/y")
    with pytest.raises(InvalidInput):
        store.put_artifact(run_id, "no-such-kind", b"x", key="k", media_type="x/y")


def test_uploads_are_private_to_their_owner(store: Store) -> None:
    alice = store.create_user("alice", "password one")
    bob = store.create_user("bob", "password two")
    up = store.add_upload(
        png_bytes((20, 10)),
        owner_id=alice.id,
        original_name="../../x.png",
        media_type="image/png",
        width=20,
        height=10,
    )
    assert store.upload_bytes(up.id, viewer=alice) == png_bytes((20, 10))
    assert up.thumb_sha256 is not None and store.list_uploads(viewer=alice) == [up]
    with pytest.raises(Exception, match="no upload"):
        store.get_upload(up.id, viewer=bob)


def test_a_job_cannot_name_another_members_upload(store: Store) -> None:
    """worker.api.submit_job and the worker both go through these checks."""
    from db.errors import NotFound, PermissionDenied

    alice = store.create_user("alice", "password one")
    bob = store.create_user("bob", "password two")
    mine = store.add_upload(
        png_bytes((8, 8)), owner_id=alice.id, original_name="a.png", media_type="image/png"
    )
    run, _ = store.create_run({"name": "t"}, owner_id=bob.id, visibility="team")
    with store.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE runs SET state = 'DONE' WHERE id = '{run.id}'")
    params = {"upload_id": mine.id, "sigma": 20.0}
    with pytest.raises(NotFound, match="no upload"):
        store.create_job("denoise", run.id, params, owner_id=bob.id, viewer=bob)
    with pytest.raises(NotFound, match="no upload"):
        store.create_job(
            "inpaint",
            run.id,
            {"upload_id": 1, "mask_upload_id": mine.id},
            owner_id=bob.id,
            viewer=bob,
        )
    with pytest.raises(PermissionDenied):  # submitting in another member's name
        store.create_job("denoise", run.id, params, owner_id=alice.id, viewer=bob)
    job = store.create_job("denoise", run.id, params, owner_id=alice.id, viewer=alice)
    assert job.owner_id == alice.id
    # the worker reads uploads with the submitter's rights: bob's job never reads hers
    with pytest.raises(NotFound):
        store.upload_bytes(mine.id, viewer=store.get_user(bob.id))

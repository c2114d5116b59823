"""Runs, visibility, tags, notes, cancel and delete: the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from db.access import SYSTEM
from db.entities import CANCELLED, QUEUED, RUNNING, MetricPoint
from db.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from db.store import Store

CONFIG = {"name": "swiss", "train": {"steps": 10}}


def users(store: Store):  # noqa: ANN201
    alice = store.create_user("alice", "correct horse", is_admin=False)
    bob = store.create_user("bob", "battery staple")
    admin = store.create_user("root", "admin password", is_admin=True)
    return alice, bob, admin


def test_create_and_read_run(store: Store) -> None:
    owner = store.local_user()
    run, job = store.create_run(
        CONFIG,
        owner_id=owner.id,
        preset="swissroll-smoke",
        tags=["b", "a", "a"],
        seed=7,
        total_steps=10,
    )
    assert run.state == QUEUED and job.state == QUEUED and job.kind == "train"
    assert job.run_id == run.id and job.queue == "gpu" and job.celery_id
    got = store.get_run(run.id, viewer=SYSTEM)
    assert got == run
    assert got.tags == ("a", "b") and got.config == CONFIG and got.owner == "local"
    assert got.progress == 0.0 and got.seed == 7
    assert store.train_job(run.id) == job


def test_visibility_is_enforced_on_reads(store: Store) -> None:
    alice, bob, admin = users(store)
    private, _ = store.create_run(CONFIG, owner_id=alice.id)
    shared, _ = store.create_run(CONFIG, owner_id=alice.id, visibility="team")
    assert {r.id for r in store.list_runs(viewer=alice)} == {private.id, shared.id}
    assert {r.id for r in store.list_runs(viewer=bob)} == {shared.id}
    with pytest.raises(NotFound):
        store.get_run(private.id, viewer=bob)
    with pytest.raises(NotFound):
        store.metric_series(private.id, "loss_bits", viewer=bob)
    with pytest.raises(NotFound):
        store.list_artifacts(private.id, viewer=bob)
    assert store.get_run(shared.id, viewer=bob).id == shared.id
    with pytest.raises(PermissionDenied):
        store.set_notes(shared.id, "mine now", viewer=bob)
    assert store.set_notes(shared.id, "admin note", viewer=admin).notes == "admin note"
    store.set_visibility(private.id, "team", viewer=alice)
    assert store.get_run(private.id, viewer=bob).visibility == "team"
    with pytest.raises(InvalidInput, match="visibility"):
        store.set_visibility(private.id, "public", viewer=alice)


def test_tags_notes_filters(store: Store) -> None:
    owner = store.local_user()
    r1, _ = store.create_run(CONFIG, owner_id=owner.id, name="alpha run")
    r2, _ = store.create_run(CONFIG, owner_id=owner.id, name="beta run")
    store.add_tag(r1.id, "paper", viewer=owner)
    store.add_tag(r2.id, "scratch", viewer=owner)
    assert store.remove_tag(r2.id, "scratch", viewer=owner).tags == ()
    assert [r.id for r in store.list_runs(viewer=owner, tag="paper")] == [r1.id]
    assert [r.id for r in store.list_runs(viewer=owner, search="BETA")] == [r2.id]
    assert store.all_tags(viewer=owner) == ["paper"]
    assert store.set_notes(r1.id, "looks good", viewer=owner).notes == "looks good"
    with pytest.raises(InvalidInput, match="tag"):
        store.add_tag(r1.id, "bad/tag", viewer=owner)
    assert store.list_runs(viewer=owner, states=[QUEUED], ids=[r2.id])[0].id == r2.id


def test_cancel_queued_run_is_immediate(store: Store) -> None:
    owner = store.local_user()
    run, job = store.create_run(CONFIG, owner_id=owner.id)
    assert store.request_cancel(run.id).state == CANCELLED
    assert store.get_job(job.id, viewer=SYSTEM).state == CANCELLED
    claim = store.claim_job(job.id, job.celery_id, worker="w", host="h", device="cpu", lease_s=10)
    assert not claim.ok and claim.reason == "final"


def test_delete_run_removes_rows_and_unshared_bytes(store: Store) -> None:
    owner = store.local_user()
    run, job = store.create_run(CONFIG, owner_id=owner.id)
    other, _ = store.create_run(CONFIG, owner_id=owner.id)
    with pytest.raises(Conflict, match="cancel"):
        store.delete_run(run.id, viewer=owner)
    store.request_cancel(run.id)
    store.append_metrics(run.id, [MetricPoint("loss_bits", 1, 1.0, 0.0)])
    mine = store.put_artifact(
        run.id, "gallery", b"only mine", key="g.npy", media_type="application/x-npy", step=1
    )
    shared = store.put_artifact(
        run.id, "gallery", b"shared", key="s.npy", media_type="application/x-npy", step=1
    )
    store.put_artifact(
        other.id, "gallery", b"shared", key="s.npy", media_type="application/x-npy", step=1
    )
    orphans = store.delete_run(run.id, viewer=owner)
    assert orphans == [mine.sha256]
    assert not store.artifacts.exists(mine.sha256) and store.artifacts.exists(shared.sha256)
    with pytest.raises(NotFound):
        store.get_run(run.id, viewer=SYSTEM)
    with pytest.raises(NotFound):
        store.get_job(job.id, viewer=SYSTEM)
    assert store.list_runs(viewer=SYSTEM, ids=[other.id])[0].id == other.id


def test_running_state_mirrors_train_job(store: Store) -> None:
    owner = store.local_user()
    run, job = store.create_run(CONFIG, owner_id=owner.id, total_steps=100)
    claim = store.claim_job(
        job.id, job.celery_id, worker="w1", host="node1", device="cuda:0", lease_s=30
    )
    assert claim.ok and claim.resume_step is None
    got = store.get_run(run.id, viewer=SYSTEM)
    assert (got.state, got.host, got.device) == (RUNNING, "node1", "cuda:0")
    assert got.lease_expires_at is not None and got.lease_owner == claim.job.lease_owner

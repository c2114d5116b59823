"""Users, invites, share links, job leases, the reconciler's queries and worker heartbeats."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from db.access import SYSTEM
from db.entities import CANCELLED, DONE, QUEUED, RUNNING
from db.errors import Conflict, InvalidInput, LeaseLost, NotFound, PermissionDenied
from db.store import Store
from db.store_jobs import Lease


def test_passwords_are_argon2_and_checked(store: Store) -> None:
    user = store.create_user("alice", "correct horse")
    assert store.authenticate("alice", "correct horse") == user
    assert store.authenticate("alice", "wrong horse") is None
    assert store.authenticate("nobody", "correct horse") is None
    with pytest.raises(Conflict):
        store.create_user("alice", "another password")
    with pytest.raises(InvalidInput, match="at least"):
        store.create_user("carol", "short")
    with pytest.raises(InvalidInput, match="username"):
        store.create_user("local", "long enough password")
    from sqlalchemy import text

    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users WHERE username='alice'"))
        assert stored.scalar().startswith("$argon2id$")


def test_local_user_is_single_and_implicit(store: Store) -> None:
    a, b = store.local_user(), store.local_user()
    assert a == b and a.is_local and a.is_admin
    assert store.authenticate("local", "") is None
    assert store.count_users() == 0


def test_invites(store: Store) -> None:
    admin = store.create_user("root", "admin password", is_admin=True)
    plain = store.create_user("alice", "alice password")
    with pytest.raises(PermissionDenied):
        store.create_invite(plain)
    invite = store.create_invite(admin)
    assert len(invite.token) >= 40
    bob = store.accept_invite(invite.token, "bob", "bob password")
    assert store.authenticate("bob", "bob password") == bob and not bob.is_admin
    with pytest.raises(NotFound):
        store.accept_invite(invite.token, "eve", "eve password")
    expired = store.create_invite(admin, ttl=dt.timedelta(seconds=-1))
    with pytest.raises(NotFound):
        store.accept_invite(expired.token, "eve", "eve password")


def test_share_links_give_read_only_access(store: Store) -> None:
    alice = store.create_user("alice", "alice password")
    bob = store.create_user("bob", "bob password")
    carol = store.create_user("carol", "carol password")
    private, _ = store.create_run({"name": "p"}, owner_id=alice.id)
    team, _ = store.create_run({"name": "t"}, owner_id=alice.id, visibility="team")
    other, _ = store.create_run({"name": "o"}, owner_id=alice.id)
    link = store.create_share_link([team.id, private.id], viewer=alice, title="compare")
    assert link.is_comparison and len(link.token) >= 30
    # holding the link is what counts: bob sees the private run too, read only
    assert store.resolve_share_link(link.token, viewer=bob).run_ids == (team.id, private.id)
    with pytest.raises(NotFound):
        store.get_run(private.id, viewer=bob)  # without the link: nothing
    _, as_bob = store.share_viewer(link.token, viewer=bob)
    assert store.get_run(private.id, viewer=as_bob).name == "p"
    assert {r.id for r in store.list_runs(viewer=as_bob)} == {team.id, private.id}
    with pytest.raises(NotFound):
        store.get_run(other.id, viewer=as_bob)  # only the runs the link names
    with pytest.raises(PermissionDenied):
        store.set_notes(private.id, "mine now", viewer=as_bob)
    _, as_alice = store.share_viewer(link.token, viewer=alice)
    with pytest.raises(PermissionDenied):  # through a link even the owner only reads
        store.set_notes(private.id, "x", viewer=as_alice)
    with pytest.raises(NotFound):
        store.resolve_share_link("not-a-real-token-at-all", viewer=alice)
    with pytest.raises(NotFound):
        store.create_share_link([private.id], viewer=bob)
    # a team run shared by bob, then made private by alice: bob's link no longer opens it
    bobs = store.create_share_link([team.id], viewer=bob)
    store.set_visibility(team.id, "private", viewer=alice)
    with pytest.raises(NotFound):
        store.resolve_share_link(bobs.token, viewer=carol)
    store.set_visibility(team.id, "team", viewer=alice)
    # the owner lists every link to her run and revokes bob's; bob may not revoke hers
    assert {x.token for x in store.list_share_links(team.id, viewer=alice)} == {
        link.token,
        bobs.token,
    }
    assert [x.token for x in store.list_share_links(team.id, viewer=bob)] == [bobs.token]
    with pytest.raises(PermissionDenied):
        store.delete_share_link(link.token, viewer=bob)
    with pytest.raises(PermissionDenied):
        store.delete_share_link(link.token, viewer=carol)
    store.delete_share_link(bobs.token, viewer=alice)
    store.delete_share_link(link.token, viewer=alice)
    with pytest.raises(NotFound):
        store.resolve_share_link(link.token, viewer=bob)
    expired = store.create_share_link([team.id], viewer=alice, ttl=dt.timedelta(seconds=-1))
    with pytest.raises(NotFound):
        store.resolve_share_link(expired.token, viewer=bob)
    fresh = store.create_share_link([team.id], viewer=alice, ttl=dt.timedelta(days=1))
    assert store.resolve_share_link(fresh.token, viewer=bob).expires_at is not None


def test_claim_is_exclusive_and_leases_expire(store: Store) -> None:
    run, job = store.create_run({"name": "c"}, owner_id=store.local_user().id)
    stale = store.claim_job(
        job.id, "an-old-message-id", worker="w0", host="h", device="cpu", lease_s=5
    )
    assert not stale.ok and stale.reason == "stale message"
    first = store.claim_job(job.id, job.celery_id, worker="w1", host="h", device="cpu", lease_s=0.5)
    second = store.claim_job(job.id, job.celery_id, worker="w2", host="h", device="cpu", lease_s=5)
    assert first.ok and not second.ok and second.reason == "held by another worker"
    same = store.claim_job(
        job.id, job.celery_id, worker="w1", host="h", device="cpu", lease_s=0.5
    )  # w1's pool process died: the message came back
    assert same.ok and same.job.lease_owner != first.job.lease_owner
    with pytest.raises(LeaseLost):
        store.heartbeat(Lease(job.id, first.job.lease_owner), 5)
    first = same
    assert store.stale_jobs(queued_grace_s=60) == []
    time.sleep(0.7)
    assert [j.id for j in store.stale_jobs(queued_grace_s=60)] == [job.id]
    new_id = store.requeue_job(job.id, job.celery_id)
    assert new_id and store.requeue_job(job.id, job.celery_id) is None
    assert store.get_run(run.id, viewer=SYSTEM).state == QUEUED
    with pytest.raises(LeaseLost):
        store.heartbeat(Lease(job.id, first.job.lease_owner), 5)
    again = store.claim_job(job.id, new_id, worker="w3", host="h", device="cpu", lease_s=5)
    assert again.ok and again.job.attempts == 3
    lease = Lease(job.id, again.job.lease_owner)
    assert store.heartbeat(lease, 5) is False
    store.request_cancel(run.id)
    assert store.heartbeat(lease, 5) is True
    store.update_progress(lease, progress=0.5, step=5, total_steps=10, checkpoint_step=5)
    store.finish_job(lease, CANCELLED)
    got = store.get_run(run.id, viewer=SYSTEM)
    assert (got.state, got.checkpoint_step, got.lease_owner) == (CANCELLED, 5, None)


def test_queued_jobs_never_sent_are_stale(store: Store) -> None:
    run, job = store.create_run({"name": "q"}, owner_id=store.local_user().id)
    assert store.stale_jobs(queued_grace_s=1.5) == []
    time.sleep(1.6)
    assert [j.id for j in store.stale_jobs(queued_grace_s=1.5)] == [job.id]
    store.mark_enqueued(job.id, job.celery_id)
    assert store.stale_jobs(queued_grace_s=1.5) == []


def test_posterior_jobs_need_a_trained_run(store: Store) -> None:
    owner = store.local_user()
    run, job = store.create_run({"name": "j"}, owner_id=owner.id)
    with pytest.raises(InvalidInput, match="checkpoint"):
        store.create_job("sample", run.id, {"n": 4}, owner_id=owner.id, viewer=owner)
    claim = store.claim_job(job.id, job.celery_id, worker="w", host="h", device="cpu", lease_s=5)
    store.finish_job(Lease(job.id, claim.job.lease_owner), DONE, final_bound=(1.5, 0.1))
    assert store.get_run(run.id, viewer=SYSTEM).final_bound_bits == 1.5
    sample = store.create_job("sample", run.id, {"n": 4}, owner_id=owner.id, viewer=owner)
    assert sample.state == QUEUED and sample.kind == "sample"
    assert [j.id for j in store.list_jobs(viewer=owner, kinds=["sample"])] == [sample.id]
    c = store.claim_job(sample.id, sample.celery_id, worker="w", host="h", device="cpu", lease_s=5)
    assert c.ok and store.get_run(run.id, viewer=SYSTEM).state == DONE  # run untouched
    store.finish_job(Lease(sample.id, c.job.lease_owner), "FAILED", error="boom")
    assert [j.error for j in store.recent_failures(viewer=owner)] == ["boom"]
    assert store.job_counts() == {DONE: 1, "FAILED": 1}
    with pytest.raises(InvalidInput):
        store.create_job("train", run.id, {}, owner_id=owner.id, viewer=owner)
    assert RUNNING not in store.job_counts()


def test_worker_heartbeats(store: Store) -> None:
    store.worker_heartbeat(
        "w1@node", host="node", device="cuda:0", queues=["gpu", "cpu"], pid=42, started=True
    )
    store.set_worker_job("w1@node", "abc")
    (w,) = store.workers()
    assert (w.host, w.device, w.queues, w.current_job_id) == (
        "node",
        "cuda:0",
        ("gpu", "cpu"),
        "abc",
    )
    assert store.workers(online_within_s=-1) == []
    store.worker_gone("w1@node")
    assert store.workers(online_within_s=None) == []


def test_a_job_whose_worker_keeps_dying_fails(store: Store) -> None:
    run, job = store.create_run({"name": "oom"}, owner_id=store.local_user().id)
    for _ in range(2):
        assert store.claim_job(
            job.id, job.celery_id, worker="w", host="h", device="cpu", lease_s=5, max_attempts=2
        ).ok
    claim = store.claim_job(
        job.id, job.celery_id, worker="w", host="h", device="cpu", lease_s=5, max_attempts=2
    )
    assert not claim.ok and claim.reason == "too many attempts"
    got = store.get_run(run.id, viewer=SYSTEM)
    assert got.state == "FAILED" and "2 attempts" in got.error


def test_extend_run_only_done_or_cancelled_with_a_checkpoint_by_its_owner(store: Store) -> None:
    from db.errors import Conflict, InvalidInput
    from db.store_jobs import Lease

    alice = store.create_user("alice2", "alice password")
    bob = store.create_user("bob2", "bob password")
    run, job = store.create_run(
        {"name": "x", "train": {"steps": 10}}, owner_id=alice.id, total_steps=10
    )
    with pytest.raises(Conflict):  # queued: not finished
        store.extend_run(run.id, 5, viewer=alice)
    claim = store.claim_job(job.id, job.celery_id, worker="w", host="h", device="cpu", lease_s=60)
    lease = Lease(job.id, claim.job.lease_owner)
    store.finish_job(lease, "DONE")
    with pytest.raises(Conflict):  # no checkpoint to continue from
        store.extend_run(run.id, 5, viewer=alice)
    store.put_artifact(
        run.id,
        "checkpoint",
        b"w",
        key="checkpoint.pt",
        media_type="application/octet-stream",
        step=10,
    )
    store.set_visibility(run.id, "team", viewer=alice)  # bob sees it, but may not change it
    with pytest.raises(PermissionDenied):
        store.extend_run(run.id, 5, viewer=bob)
    with pytest.raises(InvalidInput):
        store.extend_run(run.id, 0, viewer=alice)
    extended, new_job = store.extend_run(run.id, 5, viewer=alice)
    assert (extended.state, extended.total_steps, extended.config["train"]["steps"]) == (
        "QUEUED",
        15,
        15,
    )
    assert new_job.kind == "train" and new_job.state == "QUEUED" and new_job.id != job.id
    assert store.train_job(run.id).id == new_job.id


def test_a_continued_run_keeps_its_lr_schedule_length(store: Store) -> None:
    """extend_run grows train.steps but records the schedule's length (train.lr_steps), once:
    a second continuation keeps the first length. The lr at the join is then the lr the run
    stopped at (diffusion.training.parts.lr_at), not the schedule restarted over the total."""
    from diffusion.config import RunConfig
    from diffusion.presets import PRESETS
    from diffusion.training.parts import lr_at

    owner = store.local_user()
    config = PRESETS["swissroll-smoke"].with_overrides(["train.steps=60"])
    run, job = store.create_run(config.to_dict(), owner_id=owner.id, total_steps=60)
    claim = store.claim_job(job.id, job.celery_id, worker="w", host="h", device="cpu", lease_s=60)
    store.put_artifact(run.id, "checkpoint", b"w", key="checkpoint.pt", media_type="x/y", step=60)
    store.finish_job(Lease(job.id, claim.job.lease_owner), DONE)
    extended, job = store.extend_run(run.id, 40, viewer=owner)
    more = RunConfig.from_dict(extended.config)
    assert (more.train.steps, more.train.lr_steps) == (100, 60)
    last = lr_at(config, 60)
    assert last == pytest.approx(config.train.lr_final) and last < config.train.lr
    assert lr_at(more, 60) == pytest.approx(last) and lr_at(more, 61) == pytest.approx(last)
    assert lr_at(config.with_overrides(["train.steps=100"]), 61) > 1.5 * last  # the old jump
    claim = store.claim_job(job.id, job.celery_id, worker="w", host="h", device="cpu", lease_s=60)
    store.finish_job(Lease(job.id, claim.job.lease_owner), DONE)
    again, _ = store.extend_run(run.id, 10, viewer=owner)
    assert (again.config["train"]["steps"], again.config["train"]["lr_steps"]) == (110, 60)


def test_jobs_and_artifacts_are_seen_only_with_their_run(store: Store) -> None:
    alice = store.create_user("alice", "alice password")
    bob = store.create_user("bob", "bob password")
    run, job = store.create_run({"name": "p"}, owner_id=alice.id)
    art = store.put_artifact(run.id, "report", b"{}", key="r.json", media_type="application/json")
    assert store.get_job(job.id, viewer=alice) == store.get_job(job.id, viewer=SYSTEM) == job
    assert store.get_artifact(art.id, viewer=alice) == art
    assert store.get_artifact(art.id, viewer=alice).created_at.tzinfo is not None
    with pytest.raises(NotFound, match=f"no run '{run.id}'"):  # no hint that the job exists
        store.get_job(job.id, viewer=bob)
    with pytest.raises(NotFound, match=f"no run '{run.id}'"):
        store.get_artifact(art.id, viewer=bob)
    with pytest.raises(NotFound, match="no job 'nope'"):
        store.get_job("nope", viewer=SYSTEM)
    with pytest.raises(NotFound, match="no artifact 999999"):
        store.get_artifact(999_999, viewer=SYSTEM)
    store.set_visibility(run.id, "team", viewer=alice)
    assert store.get_job(job.id, viewer=bob).params == job.params

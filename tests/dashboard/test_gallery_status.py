"""Gallery (thumbnails of visible runs, filters, pages) and Status (workers, failures)."""

from __future__ import annotations

from dashboard_helpers import app_test, make_run, texts


def test_gallery_shows_visible_runs_only_and_filters(store):
    user = store.local_user()
    make_run(store, user, "digits-smoke", name="digits")
    make_run(store, user, name="roll")
    alice = store.create_user("alice", "correct horse battery")
    make_run(store, alice, "digits-smoke", name="alice private")
    at = app_test("gallery")
    assert not at.exception
    captions = sorted(c for img in at.image for c in img.captions)
    assert captions == ["digits · step 30", "roll · step 30"]
    at.multiselect(key="gallery_data").set_value(["digits"]).run()
    assert len(at.image) == 1
    assert "alice private" not in texts(at)


def test_gallery_pages(store):
    from dashboard.gallery import PAGE_SIZE

    user = store.local_user()
    for i in range(PAGE_SIZE + 1):
        make_run(store, user, "digits-smoke", name=f"d{i}", evals=1)
    at = app_test("gallery")
    assert len(at.image) == PAGE_SIZE

    def button(label):
        return next(b for b in at.button if b.label == label)

    assert button("Previous page").disabled and not button("Next page").disabled
    button("Next page").click()
    at.run()
    assert len(at.image) == 1
    assert not button("Previous page").disabled and button("Next page").disabled


def test_gallery_empty(store):
    at = app_test("gallery")
    assert "No samples yet" in texts(at)


def test_status_lists_workers_queues_and_failures(store, queue):
    store.worker_heartbeat(
        "celery@gpu1", host="gpu1", device="cuda:0", queues=["gpu"], pid=123, started=True
    )
    make_run(store, store.local_user(), state="FAILED")
    at = app_test("status")
    assert not at.exception
    workers = at.dataframe[0].value
    assert list(workers["device"]) == ["cuda:0"]
    assert any("CUDA out of memory" in c.value for c in at.code)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Workers online"] == "1"


def test_status_when_redis_is_down(store):
    at = app_test("status")
    assert not at.exception
    assert any("not reachable" in w.value for w in at.warning)


def test_database_down_is_a_message(store, monkeypatch, tmp_path):
    from dashboard.services import _store_for

    monkeypatch.setenv("DIFFLAB_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    _store_for.clear()
    at = app_test()
    assert not at.exception
    assert any("database cannot be used" in e.value for e in at.error)
    monkeypatch.setenv("DIFFLAB_TEAM_MODE", "1")  # the sign-in check reads the store first
    at = app_test()
    assert not at.exception
    assert any("database cannot be used" in e.value for e in at.error)


def test_status_agrees_with_itself_device_job_step_and_heartbeat(store, queue):
    """The worker row names the job the "Jobs running" count counts, with the run's step, the
    GPU's memory, and a heartbeat that does not wipe the current job."""
    store.worker_heartbeat(
        "celery@gpu1",
        host="gpu1",
        device="cuda:0",
        queues=["gpu"],
        pid=123,
        started=True,
        device_info={"name": "NVIDIA H200", "memory_used_mib": 2048, "memory_total_mib": 143360},
    )
    run, job = store.create_run({"name": "r"}, owner_id=store.local_user().id, total_steps=3000)
    claim = store.claim_job(
        job.id, job.celery_id, worker="celery@gpu1", host="gpu1", device="cuda:0", lease_s=600
    )
    from db.store_jobs import Lease

    store.set_worker_job("celery@gpu1", job.id)
    store.update_progress(Lease(job.id, claim.job.lease_owner), progress=0.1, step=300)
    store.worker_heartbeat(  # the periodic beat: no job given, the job is kept
        "celery@gpu1", host="gpu1", device="cuda:0", queues=["gpu"], pid=123
    )
    assert store.workers()[0].current_job_id == job.id
    at = app_test("status")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Jobs running"] == "1" and metrics["Workers online"] == "1"
    row = at.dataframe[0].value.iloc[0]
    assert row["device"] == "cuda:0 · NVIDIA H200"
    assert row["GPU memory used / total"] == "2.0 / 140.0 GiB"
    assert row["current job"] == f"train {job.id} (run {run.id}), step 300 of 3,000"
    assert row["last heartbeat"].endswith("s ago")


def test_status_reads_runs_once_not_per_running_job(store, queue, monkeypatch):
    """Many running jobs (a team's, held by workers gone quiet) and a few queued: the page
    counts them in the database and reads only the runs of the online workers' jobs, in one
    query (the old page read every running job's run, one query each)."""
    from db.store import Store

    user = store.local_user()
    for i in range(6):
        run, job = store.create_run({"name": f"r{i}"}, owner_id=user.id, device_request="cpu")
        store.claim_job(job.id, job.celery_id, worker="gone", host="h", device="cpu", lease_s=600)
    for _ in range(3):
        store.create_run({"name": "waiting"}, owner_id=user.id, device_request="cpu")
    store.worker_heartbeat("w1", host="h", device="cpu", queues=["cpu"], pid=1, started=True)
    reads: list[str] = []
    for name in ("get_run", "list_runs"):
        real = getattr(Store, name)
        monkeypatch.setattr(
            Store,
            name,
            lambda self, *a, _real=real, _name=name, **kw: (
                reads.append(_name),
                _real(self, *a, **kw),
            )[1],
        )
    at = app_test("status")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Jobs running"] == "6" and metrics["Queued for cpu"] == "3"
    assert "get_run" not in reads and reads.count("list_runs") <= 2  # one per render
    assert "6 running job(s) held by a worker that has not reported" in texts(at)

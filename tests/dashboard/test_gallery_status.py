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

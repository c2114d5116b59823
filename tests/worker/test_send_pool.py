"""Submitting reuses broker connections (worker.api.send's producer pool, broker.check's
shared client) and survives Redis dropping them; a real Redis db of the test's own."""

from __future__ import annotations

import redis
import redis.connection
from pytest import MonkeyPatch

import worker.api as api
from db.access import SYSTEM
from db.store import Store
from diffusion.presets import PRESETS
from worker import broker


def _store(redis_url: str, monkeypatch: MonkeyPatch) -> Store:
    monkeypatch.setenv("DIFFLAB_REDIS_URL", redis_url)
    store = Store.from_env()
    store.upgrade()
    return store


def test_submissions_reuse_broker_connections(data_dir, redis_url, monkeypatch) -> None:
    store = _store(redis_url, monkeypatch)
    owner = store.local_user()
    config = PRESETS["swissroll-smoke"]
    api.submit_run(store, config, owner)  # the first one may connect
    opened: list[int] = []
    connect = redis.connection.Connection._connect

    def counted(self):  # noqa: ANN001, ANN202
        opened.append(1)
        return connect(self)

    monkeypatch.setattr(redis.connection.Connection, "_connect", counted)
    runs = [api.submit_run(store, config, owner) for _ in range(10)]
    assert opened == []  # the old send: a new connection (and check) per submission
    jobs = [store.train_job(r.id) for r in runs]
    assert broker.queue_lengths(redis_url)["gpu"] == 11
    assert {j.celery_id for j in jobs} <= broker.held_task_ids(redis_url)
    assert all(store.get_job(j.id, viewer=SYSTEM).enqueued_at is not None for j in jobs)
    store.dispose()


def test_a_connection_redis_dropped_is_replaced(data_dir, redis_url, monkeypatch) -> None:
    """Redis closing the pooled connections (a restart, an idle timeout): the next submit
    still goes through, on a fresh connection."""
    store = _store(redis_url, monkeypatch)
    owner = store.local_user()
    config = PRESETS["swissroll-smoke"]
    api.submit_run(store, config, owner)
    db = int(redis_url.rsplit("/", 1)[1])
    admin = redis.Redis.from_url(redis_url)
    mine = [c["id"] for c in admin.client_list() if int(c["db"]) == db and c["cmd"] != "client"]
    for client_id in mine:  # only this test's db: other clients of this Redis are left alone
        admin.client_kill_filter(_id=client_id)
    run = api.submit_run(store, config, owner)
    assert store.train_job(run.id).celery_id in broker.held_task_ids(redis_url)
    assert broker.queue_lengths(redis_url)["gpu"] == 2
    admin.close()
    store.dispose()

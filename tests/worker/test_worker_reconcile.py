"""The enqueue API and the reconciler against real Redis, in-process (no worker needed)."""

from __future__ import annotations

import time

import pytest
import redis
from worker_lab import Lab

from db.access import SYSTEM
from db.entities import QUEUED
from diffusion.presets import load_config
from worker import api, broker
from worker.reconcile import reconcile

pytestmark = pytest.mark.services


def test_submit_enqueues_after_commit_and_reconciler_restores_lost(lab: Lab) -> None:
    store, owner = lab.store, lab.store.local_user()
    config = load_config("swissroll-smoke", ["train.device=cpu"])
    run = api.submit_run(store, config, owner, tags=["t"])
    job = store.train_job(run.id)
    assert job.queue == "cpu" and job.enqueued_at is not None
    assert broker.held_task_ids(lab.redis_url) == {job.celery_id}
    assert api.queue_lengths() == {"gpu": 0, "cpu": 1}
    time.sleep(1.1)
    assert reconcile(store, grace_s=1) == []  # waiting in the queue: not lost
    redis.Redis.from_url(lab.redis_url).flushdb()
    assert reconcile(store, grace_s=1) == [job.id]
    again = store.train_job(run.id)
    assert again.celery_id != job.celery_id and again.state == QUEUED
    assert broker.held_task_ids(lab.redis_url) == {again.celery_id}
    assert reconcile(store, grace_s=1) == []


def test_rerun_and_posterior_job_validation(lab: Lab) -> None:
    store, owner = lab.store, lab.store.local_user()
    run = api.submit_run(store, load_config("swissroll-smoke"), owner, visibility="team")
    child = api.rerun(store, run.id, owner=owner)
    assert child.parent_id == run.id and child.config == run.config
    assert child.visibility == "team"
    with pytest.raises(ValueError, match="sigma"):
        api.submit_job(store, "denoise", run.id, {"upload_id": 1, "sigma": -1}, owner)
    with pytest.raises(ValueError, match="checkpoint"):
        api.submit_job(store, "sample", run.id, {"n": 4}, owner)
    with pytest.raises(ValueError, match="kind"):
        api.submit_job(store, "train", run.id, {}, owner)
    assert len(store.list_runs(viewer=SYSTEM)) == 2

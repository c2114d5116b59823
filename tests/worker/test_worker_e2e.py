"""Real workers, real Redis: a run to DONE, kill -9 and resume, a flushed broker, two workers,
cancel, and a dashboard-like reader on SQLite. Measurements go to the closing note."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest
from worker_lab import Lab, report

from db.access import SYSTEM
from db.entities import CANCELLED, DONE, QUEUED, RUNNING
from db.store import Store
from worker import api

# Long enough that a run interrupted after its first checkpoint (1 s in) is still training
# on an idle machine: the swiss-roll smoke preset does a few hundred steps a second.
LONG = 3000

pytestmark = pytest.mark.services


def steps_of(lab: Lab, run_id: str, name: str = "loss_bits") -> list[int]:
    return [p.step for p in lab.store.metric_series(run_id, name, viewer=SYSTEM)]


class Reader(threading.Thread):
    """Polls a run's metrics and state the way a live dashboard page does; counts errors."""

    def __init__(self, run_id: str) -> None:
        super().__init__(daemon=True)
        self.store, self.run_id = Store.from_env(), run_id
        self.stop, self.errors, self.polls = threading.Event(), [], 0

    def run(self) -> None:
        last = None
        while not self.stop.is_set():
            try:
                self.store.get_run(self.run_id, viewer=SYSTEM)
                new = self.store.metrics(self.run_id, viewer=SYSTEM, after_step=last)
                last = max((p.step for s in new.values() for p in s), default=last)
                self.store.latest_metrics(self.run_id, viewer=SYSTEM)
                self.polls += 1
            except Exception as exc:  # noqa: BLE001 - counted and reported
                self.errors.append(repr(exc))
            time.sleep(0.02)


def test_run_to_done_with_bound_and_gallery(lab: Lab) -> None:
    lab.start_worker()
    lab.wait_for("the worker's heartbeat", lambda: lab.store.workers(), timeout=60)
    t0 = time.time()
    run_id = lab.submit("train.steps=200", "train.gallery_every=100")
    reader = Reader(run_id)
    reader.start()
    running = lab.wait_state(run_id, RUNNING, DONE)
    t_running = time.time()
    run = lab.wait_state(run_id, DONE, timeout=120)
    reader.stop.set()
    reader.join()
    report(
        f"submit-to-running latency: {running.started_at.timestamp() - t0:.2f}s from the "
        f"CLI call, {(running.started_at - running.created_at).total_seconds():.2f}s from "
        f"the committed row (seen by polling after {t_running - t0:.2f}s)"
    )
    assert reader.errors == [] and reader.polls > 10
    assert run.progress == 1.0 and run.host and run.device == "cpu"
    assert run.final_bound_bits is not None and run.final_bound_stderr is not None
    holdout = steps_of(lab, run_id, "k_holdout_bits")
    assert holdout and holdout[-1] == 200
    assert steps_of(lab, run_id) == list(range(10, 201, 10))
    galleries = lab.store.list_artifacts(run_id, viewer=SYSTEM, kind="gallery_png")
    assert [a.step for a in galleries] == [100, 200]
    assert all(a.thumb_sha256 for a in galleries)
    assert lab.store.latest_artifact(run_id, "checkpoint", viewer=SYSTEM).step == 200
    shown = lab.cli("show", run_id).stdout
    assert "DONE" in shown and "K(holdout)" in shown
    assert run_id in lab.cli("runs").stdout
    # jobs against the trained run, results stored as artifacts of each job
    owner = lab.store.local_user()
    sample = api.submit_job(lab.store, "sample", run_id, {"n": 32, "seed": 1}, owner)
    evaluate = api.submit_job(lab.store, "evaluate", run_id, {"k": 1}, owner)
    for job in (sample, evaluate):
        lab.wait_for(
            f"{job.kind} job",
            lambda j=job: lab.store.get_job(j.id, viewer=SYSTEM).state in (DONE, "FAILED"),
            timeout=60,
        )
        done = lab.store.get_job(job.id, viewer=SYSTEM)
        assert done.state == DONE, done.error
    kinds = {a.kind for a in lab.store.list_artifacts(run_id, viewer=SYSTEM, job_id=sample.id)}
    assert kinds == {"samples", "sample_grid"}
    (ev,) = lab.store.list_artifacts(run_id, viewer=SYSTEM, job_id=evaluate.id)
    assert json.loads(lab.store.artifact_bytes(ev, viewer=SYSTEM))["k"] == 1


def test_kill9_then_resume_from_checkpoint(lab: Lab) -> None:
    first = lab.start_worker("a")
    run_id = lab.submit(
        f"train.steps={LONG}", "train.checkpoint_every_s=1", f"train.eval_every={LONG // 5}"
    )
    lab.wait_for("a first checkpoint", lambda: lab.run(run_id).checkpoint_step, timeout=120)
    time.sleep(0.7)  # mid-way between two checkpoints
    lab.kill9(first)
    run = lab.run(run_id)
    assert run.state == RUNNING
    killed_at = time.time()
    ckpt = lab.run(run_id).checkpoint_step
    assert ckpt is not None and 0 < ckpt < LONG
    lab.start_worker("b")
    resumed = lab.wait_for(
        "training after the restart",
        lambda: [
            p
            for p in lab.store.metric_series(run_id, "loss_bits", viewer=SYSTEM, after_step=ckpt)
            if p.wall_time > killed_at
        ],
    )
    requeued = lab.store.train_job(run_id).enqueued_at
    report(
        f"kill -9 to resumed training: {resumed[0].wall_time - killed_at:.2f}s, "
        f"re-enqueued by the reconciler after {requeued.timestamp() - killed_at:.2f}s "
        f"(lease {lab.env['DIFFLAB_LEASE_S']}s, reconcile every "
        f"{lab.env['DIFFLAB_RECONCILE_S']}s; resumed at step {resumed[0].step}, "
        f"checkpoint {ckpt}, killed near step {run.step})"
    )
    done = lab.wait_state(run_id, DONE, timeout=150)
    points = lab.store.metric_series(run_id, "loss_bits", viewer=SYSTEM)
    assert [p.step for p in points] == list(range(10, LONG + 1, 10))  # no gap, no duplicate
    before = [p for p in points if p.step <= ckpt]
    assert before and all(p.wall_time < killed_at for p in before)  # kept, not redone
    assert steps_of(lab, run_id, "k_holdout_bits") == list(range(LONG // 5, LONG + 1, LONG // 5))
    assert lab.store.train_job(run_id).attempts == 2 and done.final_bound_bits is not None


def test_broker_flushed_while_queued(lab: Lab) -> None:
    import redis

    run_id = lab.submit("train.steps=50")
    assert lab.run(run_id).state == QUEUED
    client = redis.Redis.from_url(lab.redis_url)
    assert client.llen("gpu") == 1
    client.flushdb()
    lab.start_worker()
    run = lab.wait_state(run_id, DONE, timeout=120)
    job = lab.store.train_job(run_id)
    assert job.attempts == 1 and run.progress == 1.0


def test_two_workers_four_jobs_each_once(pg_lab: Lab) -> None:
    """On PostgreSQL: two workers claiming concurrently."""
    lab = pg_lab
    lab.start_worker("a")
    lab.start_worker("b")
    ids = [lab.submit("train.steps=60", f"train.seed={i}") for i in range(4)]
    for run_id in ids:
        lab.wait_state(run_id, DONE, timeout=150)
    for run_id in ids:
        assert lab.store.train_job(run_id).attempts == 1
        assert steps_of(lab, run_id) == list(range(10, 61, 10))
    log = lab.logs()
    for run_id in ids:
        assert log.count(f"run {run_id}: training") == 1


def test_cancel_mid_run_keeps_checkpoint(lab: Lab) -> None:
    lab.start_worker()
    run_id = lab.submit("train.steps=20000", "train.checkpoint_every_s=1")
    lab.wait_for("a first checkpoint", lambda: lab.run(run_id).checkpoint_step, timeout=120)
    assert "cancel requested" in lab.cli("cancel", run_id).stdout
    run = lab.wait_state(run_id, CANCELLED, timeout=60)
    ckpt = lab.store.latest_artifact(run_id, "checkpoint", viewer=SYSTEM)
    assert ckpt is not None and run.checkpoint_step == ckpt.step
    assert ckpt.step < 20000 and run.step >= ckpt.step


@pytest.mark.slow
def test_sigterm_hands_the_run_back(lab: Lab) -> None:
    """A warm shutdown (what `difflab up` does on Ctrl-C): checkpoint, back to the queue."""
    first = lab.start_worker("a")
    run_id = lab.submit(
        f"train.steps={LONG}", "train.checkpoint_every_s=1", f"train.eval_every={LONG // 5}"
    )
    lab.wait_for("a first checkpoint", lambda: lab.run(run_id).checkpoint_step, timeout=120)
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=60)
    run = lab.run(run_id)
    assert run.state == QUEUED and run.checkpoint_step and run.checkpoint_step < LONG
    lab.start_worker("b")
    lab.wait_state(run_id, DONE, timeout=150)
    assert steps_of(lab, run_id) == list(range(10, LONG + 1, 10))
    assert lab.store.train_job(run_id).attempts == 1  # a hand-back is not a failed attempt


@pytest.mark.slow
def test_pool_process_killed_resumes_on_the_same_worker(lab: Lab) -> None:
    """kill -9 of the process running the task: Celery re-delivers it, the run resumes."""
    worker = lab.start_worker()
    run_id = lab.submit(
        f"train.steps={LONG}", "train.checkpoint_every_s=1", f"train.eval_every={LONG // 5}"
    )
    lab.wait_for("a first checkpoint", lambda: lab.run(run_id).checkpoint_step, timeout=120)
    (child,) = [
        int(p)
        for p in subprocess.run(
            ["pgrep", "-P", str(worker.pid)], capture_output=True, text=True
        ).stdout.split()
    ]
    os.kill(child, signal.SIGKILL)
    killed_at = time.time()
    ckpt = lab.run(run_id).checkpoint_step
    lab.wait_state(run_id, DONE, timeout=300)  # lease expiry, then the rest of the run
    points = lab.store.metric_series(run_id, "loss_bits", viewer=SYSTEM)
    assert [p.step for p in points] == list(range(10, LONG + 1, 10))
    assert all(p.wall_time < killed_at for p in points if p.step <= ckpt)
    assert lab.store.train_job(run_id).attempts == 2 and worker.poll() is None

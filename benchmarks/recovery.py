"""Recovery drills: kill -9 the worker training a run; how long until another trains it again?

    python benchmarks/recovery.py                    # 10 drills, default lease and reconciler
    python benchmarks/recovery.py --drills 3 --out /tmp/recovery.json

Two `difflab worker` processes (CPU, default DIFFLAB_LEASE_S / DIFFLAB_RECONCILE_S: nothing
is tuned) share a fresh SQLite store and a Redis database of their own. A long swiss-roll run
trains on one of them. Each drill SIGKILLs the whole process group of the worker that holds
the run's lease (a lost node), then measures

  reclaim_s         until another worker holds the lease (the claim, one conditional update)
  training_again_s  until that worker takes a training step past its resume checkpoint (the
                    wall time of its first logged step after the kill)

then cancels that drill's run (each drill has a run of its own: a job claimed five times is
failed on purpose), starts a replacement worker and waits for it to be ready. Results (every
drill, median and max) go to benchmarks/results/recovery.json with provenance.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import provenance  # noqa: E402

REDIS = os.environ.get("DIFFLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379")
LEASE_KEY = "difflab-test-lease:{}"  # the same leases as the test fixtures (tests/conftest.py)


def lease_redis_db(token: str) -> int:
    import redis

    admin = redis.Redis.from_url(f"{REDIS}/0", socket_connect_timeout=2)
    for db in range(1, 16):
        if admin.set(LEASE_KEY.format(db), token, nx=True, ex=3600):
            redis.Redis.from_url(f"{REDIS}/{db}").flushdb()
            return db
    raise SystemExit("every Redis database 1-15 is leased; try again later")


def release_redis_db(db: int, token: str) -> None:
    import redis

    admin = redis.Redis.from_url(f"{REDIS}/0")
    redis.Redis.from_url(f"{REDIS}/{db}").flushdb()
    if admin.get(LEASE_KEY.format(db)) == token.encode():
        admin.delete(LEASE_KEY.format(db))


class Lab:
    def __init__(self, data: Path, redis_url: str) -> None:
        self.data = data
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DIFFLAB_")},
            "DIFFLAB_DATA_DIR": str(data),
            "DIFFLAB_REDIS_URL": redis_url,
            "DIFFLAB_WORKER_DEVICE": "cpu",
            "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.started = 0
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("DIFFLAB_")})
        from db.store import Store

        self.store = Store.from_env()
        self.store.upgrade()

    def start_worker(self) -> int:
        self.started += 1
        from difflab.launcher import spawn

        log = self.data / f"worker-{self.started}.log"
        proc = spawn([sys.executable, "-m", "difflab", "worker"], log, self.env, cwd=ROOT)
        self.procs[proc.pid] = proc
        return proc.pid

    def wait(self, what: str, fn, timeout: float = 180.0, every: float = 0.05):  # noqa: ANN001, ANN201
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = fn()
            if value:
                return value
            time.sleep(every)
        raise SystemExit(f"timed out waiting for {what}; logs in {self.data}")

    def online(self) -> set[int]:
        alive = {pid for pid, p in self.procs.items() if p.poll() is None}
        return {w.pid for w in self.store.workers(online_within_s=15) if w.pid in alive}

    def kill9(self, pid: int) -> None:
        os.killpg(pid, signal.SIGKILL)
        self.procs.pop(pid).wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def holder_pid(lease_owner: str | None) -> int | None:
    """The main pid of the worker named in a lease owner, `difflab-<pid>@host#token`."""
    if not lease_owner or not lease_owner.startswith("difflab-"):
        return None
    return int(lease_owner.split("@", 1)[0].removeprefix("difflab-"))


def drill(lab: Lab, run_id: str, job_id: str, number: int) -> dict:
    from db.access import SYSTEM

    def state():  # noqa: ANN202
        return lab.store.get_job(job_id, viewer=SYSTEM), lab.store.get_run(run_id, viewer=SYSTEM)

    job, run = lab.wait("a holder that trains", lambda: (s := state())[0].lease_owner and s)
    victim = holder_pid(job.lease_owner)
    assert victim in lab.procs, f"lease owner {job.lease_owner} is not one of ours"
    step_before = run.step
    t0, kill_wall = time.monotonic(), time.time()
    lab.kill9(victim)
    job, run = lab.wait(
        "another worker's claim",
        lambda: (
            (s := state())[0].lease_owner
            and holder_pid(s[0].lease_owner) not in (None, victim)
            and s
        ),
        timeout=240,
        every=0.02,
    )
    reclaim = time.monotonic() - t0
    resume = run.checkpoint_step or 0

    def first_new_step():  # noqa: ANN202
        points = lab.store.metric_series(
            run_id, "loss_bits", viewer=SYSTEM, after_step=resume, limit=3
        )
        return next((p for p in points if p.wall_time > kill_wall), None)

    point = lab.wait("a training step on the new worker", first_new_step, timeout=240)
    again = point.wall_time - kill_wall  # when the step was taken, not when it was read
    print(
        f"drill {number}: killed pid {victim} at step {step_before}; claimed after "
        f"{reclaim:.1f} s, training again (step {point.step}, resumed from {resume}) "
        f"after {again:.1f} s",
        flush=True,
    )
    return {
        "row": f"drill {number}",
        "reclaim_s": round(reclaim, 2),
        "training_again_s": round(again, 2),
        "step_at_kill": step_before,
        "load_average_1min": round(os.getloadavg()[0], 1),
        "resume_step": resume,
        "seeds": [0],
        "split": {"data": "swissroll train"},
        "train_seconds": round(again, 2),
        "eval_seconds": 0.0,
    }


def _summary(rows: list[dict]) -> dict:
    """Medians and maxima over the drills."""
    again = [r["training_again_s"] for r in rows]
    reclaim = [r["reclaim_s"] for r in rows]
    return {
        "drills": len(rows),
        "training_again_median_s": round(statistics.median(again), 2),
        "training_again_max_s": max(again),
        "reclaim_median_s": round(statistics.median(reclaim), 2),
        "reclaim_max_s": max(reclaim),
        "lease_s": "default (DIFFLAB_LEASE_S unset)",
        "reconcile_s": "default (DIFFLAB_RECONCILE_S unset)",
        "load_average_1min_median": statistics.median(r["load_average_1min"] for r in rows),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--drills", type=int, default=10)
    parser.add_argument("--settle", type=float, default=15.0, help="seconds between drills")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/recovery.json")
    args = parser.parse_args(argv)
    record = provenance.start(argv)
    token = uuid.uuid4().hex
    db = lease_redis_db(token)
    data = Path(tempfile.mkdtemp(prefix="difflab-recovery-"))
    lab = Lab(data, f"{REDIS}/{db}")
    rows = []
    try:
        for _ in range(2):
            lab.start_worker()
        lab.wait("two workers online", lambda: len(lab.online()) == 2, timeout=240)
        time.sleep(args.settle)
        from db.access import SYSTEM
        from diffusion.presets import PRESETS
        from worker.api import cancel, submit_run

        config = PRESETS["swissroll-smoke"].with_overrides(
            ["train.steps=10000000", "train.checkpoint_every_s=2", "train.eval_every=0"]
        )
        for number in range(1, args.drills + 1):
            # a run of its own per drill: a job claimed too often is failed on purpose
            run = submit_run(lab.store, config, lab.store.local_user(), name=f"drill {number}")
            job_id = lab.store.list_jobs(viewer=SYSTEM, run_id=run.id)[0].id
            lab.wait(
                "a checkpoint",
                lambda r=run.id: lab.store.get_run(r, viewer=SYSTEM).checkpoint_step,
            )
            rows.append(drill(lab, run.id, job_id, number))
            cancel(lab.store, run.id)  # frees the worker that took it over
            lab.wait(
                "the drill's run to stop",
                lambda r=run.id: lab.store.get_run(r, viewer=SYSTEM).state == "CANCELLED",
            )
            lab.start_worker()  # the replacement, so that two are online again
            lab.wait("two workers online", lambda: len(lab.online()) == 2, timeout=240)
            time.sleep(args.settle)  # a standby worker has been up a while, as in a lab
    finally:
        lab.stop()
        release_redis_db(db, token)
    summary = _summary(rows)
    provenance.write_results(
        args.out,
        record,
        rows,
        seeds=[0],
        split={"data": "swissroll train"},
        extra={"summary": summary},
    )
    print(
        f"{len(rows)} drills: training again after median {summary['training_again_median_s']} s,"
        f" max {summary['training_again_max_s']} s (claimed: median "
        f"{summary['reclaim_median_s']} s, max {summary['reclaim_max_s']} s) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

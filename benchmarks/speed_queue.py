"""The queue section of benchmarks/speed.py, on a whole lab (`difflab up`, embedded Redis):

- submit to RUNNING: `worker.api.submit_run` to the run's RUNNING row, median and 95th
  percentile over 50 submissions (5 with --quick); the CLI's Python start-up reported apart;
- a small job through the worker, submit to DONE, against the same config through
  `difflab train` (a subprocess, start-up included): worker <= 1.05 x train + 1 s, reported
  as the ratio worker / (1.05 x train + 1 s) <= 1;
- training throughput through the worker (metrics written to the database) against
  `difflab train` on the same config: the engine's own clock (`elapsed_s` in the final
  checkpoint) of each, in 4 pairs run one after the other in alternating order (worker
  first, then `difflab train` first) so that a change of the machine's load hits both; the
  ratio is the median over pairs of train seconds / worker seconds (the worker's throughput
  as a fraction of `difflab train`'s), >= 0.93;
- the worker's resident memory across the training steps of one more run (watched apart, so
  that the watcher's polling stays out of the timed runs): peak <= start-up + 5%.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.speed_common import Measurement, memory_growth
from benchmarks.speed_lab import ROOT, Lab
from diffusion.presets import PRESETS

POLL_S = 0.005


def _wait_state(
    store, run_id: str, states: tuple[str, ...], timeout_s: float = 600, poll_s: float = POLL_S
) -> float:
    from db.access import SYSTEM

    deadline = time.monotonic() + timeout_s
    while True:
        run = store.get_run(run_id, viewer=SYSTEM)
        if run.state in states:
            return time.perf_counter()
        if run.state in ("FAILED", "CANCELLED") or time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} is {run.state}: {run.error or ''}")
        time.sleep(poll_s)


def _tiny() -> dict:
    return PRESETS["swissroll-smoke"].with_overrides(
        ["train.steps=1", "train.eval_examples=16", "train.gallery_size=4", "train.eval_every=0"]
    )


def submit_latency(store, owner, n: int) -> Measurement:
    from worker.api import submit_run

    config, waits, calls = _tiny(), [], []
    for _ in range(n):
        t0 = time.perf_counter()
        run = submit_run(store, config, owner)
        calls.append(time.perf_counter() - t0)  # row committed and message sent
        waits.append(_wait_state(store, run.id, ("RUNNING", "DONE")) - t0)
        _wait_state(store, run.id, ("DONE",))
    cli = [_cli_startup() for _ in range(3)]
    med = statistics.median(waits)
    p95 = sorted(waits)[max(0, int(round(0.95 * len(waits))) - 1)]
    return Measurement(
        "queue/submit_to_running",
        med,
        0.3,
        med / 0.3,
        1.0,
        "<=",
        "s",
        {
            "median_s": round(med, 4),
            "p95_s": round(p95, 4),
            "n": n,
            "cli_python_startup_s": round(statistics.median(cli), 3),
            "api_call_median_s": round(statistics.median(calls), 4),
            "ratio": "median seconds / 0.3 s",
        },
    )


def _cli_startup() -> float:
    """Python start-up and imports of the CLI up to argument parsing (`difflab submit -h`)."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "difflab", "submit", "-h"], cwd=ROOT, capture_output=True, check=True
    )
    return time.perf_counter() - t0


def _cli_train(config, out: Path, env: dict[str, str]) -> float:
    cfg_path = out.parent / f"{out.name}.json"
    cfg_path.write_text(config.to_json())
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "difflab", "train", str(cfg_path), "--out", str(out), "--quiet"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - t0


def _elapsed(run_dir: Path) -> float:
    import torch

    return float(torch.load(run_dir / "checkpoint.pt", weights_only=False)["elapsed_s"])


def _worker_elapsed(store, run_id: str) -> float:
    """The engine's clock in the final checkpoint of a worker's run (the worker deletes its
    run folder when the run is over; the checkpoint is in the artifact store)."""
    import io

    import torch

    from db.access import SYSTEM

    art = store.list_artifacts(run_id, viewer=SYSTEM, kind="checkpoint")[-1]
    ckpt = torch.load(io.BytesIO(store.artifacts.get(art.sha256)), weights_only=False)
    return float(ckpt["elapsed_s"])


def small_job(lab: Lab, store, owner, rounds: int) -> Measurement:
    from worker.api import submit_run

    config = PRESETS["swissroll-smoke"]
    worker_s, cli_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            t0 = time.perf_counter()
            run = submit_run(store, config, owner)
            worker_s.append(_wait_state(store, run.id, ("DONE",)) - t0)
            cli_s.append(_cli_train(config, Path(tmp) / f"r{i}", lab.env()))
    w, c = statistics.median(worker_s), statistics.median(cli_s)
    return Measurement(
        "queue/small_job_vs_difflab_train",
        w,
        c,
        w / (1.05 * c + 1.0),
        1.0,
        "<=",
        "s",
        {
            "config": "swissroll-smoke",
            "rounds": rounds,
            "worker_s": [round(x, 3) for x in worker_s],
            "difflab_train_s": [round(x, 3) for x in cli_s],
            "ratio": "worker submit-to-DONE / (1.05 x difflab train wall time + 1 s)",
        },
    )


def _rss_watch(lab: Lab, store, run_id: str, total: int) -> tuple[float, float]:
    """(start-up RSS, peak RSS) in MiB of the worker's processes during the training steps:
    start-up once the first loss point is written, peak until the last step's."""
    import psutil

    from db.access import SYSTEM

    start = peak = None
    while True:
        latest = store.latest_metrics(run_id, viewer=SYSTEM).get("loss_bits")
        step = latest.step if latest else 0
        rss = 0.0
        for pid in lab.worker_pids():
            try:
                rss = max(rss, psutil.Process(pid).memory_info().rss / 2**20)
            except psutil.Error:
                continue
        if step > 0 and start is None:
            start = rss
        if start is not None and step < total:
            peak = max(peak or 0.0, rss)
        if step >= total or store.get_run(run_id, viewer=SYSTEM).state != "RUNNING" and step:
            return start or rss, peak or rss
        time.sleep(0.2)


def _worker_run(lab: Lab, store, owner, config, *, watch: bool) -> tuple[float, tuple | None, str]:
    """(engine seconds, (start, peak) RSS when `watch`, run id) of `config` through the
    worker."""
    from worker.api import submit_run

    run = submit_run(store, config, owner)
    # polled every 0.5 s: the engine's own clock is the figure, and polling the database every
    # 5 ms would take CPU from the worker that `difflab train` has to itself
    _wait_state(store, run.id, ("RUNNING", "DONE"), poll_s=0.5)
    rss = _rss_watch(lab, store, run.id, config.train.steps) if watch else None
    _wait_state(store, run.id, ("DONE",), poll_s=0.5)
    return _worker_elapsed(store, run.id), rss, run.id


def _cli_run(lab: Lab, config, folder: Path, name: str) -> float:
    _cli_train(config, folder / name, lab.env())
    return _elapsed(folder / name)


def worker_throughput(lab: Lab, store, owner, steps: int, pairs: int = 4) -> list[Measurement]:
    from db.access import SYSTEM

    config = PRESETS["heartbeat-smoke"].with_overrides(
        [f"train.steps={steps}", "train.eval_every=0", "train.log_every=10"]
    )
    worker_s, cli_s, points = [], [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(pairs):
            order = ("worker", "cli") if i % 2 == 0 else ("cli", "worker")
            for side in order:
                if side == "worker":
                    seconds, _, run_id = _worker_run(lab, store, owner, config, watch=False)
                    worker_s.append(seconds)
                    points = len(store.metric_series(run_id, "loss_bits", viewer=SYSTEM))
                else:
                    cli_s.append(_cli_run(lab, config, Path(tmp), f"cli{i}"))
    # the memory on a run of its own: the watcher's polling stays out of the timed runs
    _, rss, _ = _worker_run(lab, store, owner, config, watch=True)
    start, peak = rss
    ratios = [c / w for c, w in zip(cli_s, worker_s, strict=True)]
    return [
        Measurement(
            "queue/worker_training_vs_difflab_train",
            statistics.median(worker_s),
            statistics.median(cli_s),
            statistics.median(ratios),
            0.93,
            ">=",
            "s",
            {
                "config": "heartbeat-smoke",
                "steps": steps,
                "pairs": pairs,
                "worker_s": [round(x, 2) for x in worker_s],
                "difflab_train_s": [round(x, 2) for x in cli_s],
                "loss_points_stored": points,
                "ratio": "median over pairs of difflab train engine seconds / worker engine "
                "seconds (the worker's throughput as a fraction of difflab train's; figure "
                "and baseline are the median seconds of each)",
            },
        ),
        memory_growth(
            "memory/worker_training",
            peak,
            start,
            {"steps": steps, "ratio": "peak RSS / RSS after the first logged steps"},
        ),
    ]


def queue_section(quick: bool, emit) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with Lab(workers=1) as lab:
        from db.store import Store

        store = Store.from_env()
        owner = store.local_user()
        emit(submit_latency(store, owner, 5 if quick else 50))
        emit(small_job(lab, store, owner, 1 if quick else 3))
        for m in worker_throughput(lab, store, owner, 100 if quick else 2000, 1 if quick else 4):
            emit(m)
        store.dispose()

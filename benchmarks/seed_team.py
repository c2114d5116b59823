"""Fill a store with a team's worth of history, for the dashboard's speed at scale (issue 14).

    python benchmarks/seed_team.py --data-dir DIR [--runs 2000] [--points 50000] [--images 500]

Through the store's own API (no SQL of its own): `--runs` runs of the presets' configs with
varied names, tags and states (most DONE with a final bound, some FAILED, CANCELLED, RUNNING,
QUEUED), a run with `--points` logged steps of loss (and the bound every 1,000 steps), and a
run with `--images` gallery images. Uses DIFFLAB_DATABASE_URL, or SQLite in DIR. Prints one
JSON line: the ids of the two big runs and the counts.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PRESET_NAMES = ("swissroll", "heartbeat", "deadleaves", "digits", "swissroll-smoke")
TAGS = ("baseline", "ablation", "paper", "sweep", "long", "debug")


def _finish(store, run, job, state: str, k: float | None = None) -> None:
    from db.store_jobs import Lease

    claim = store.claim_job(
        job.id, job.celery_id, worker="seed", host="seed", device="cpu", lease_s=3600
    )
    if state == "RUNNING" or not claim.ok:
        return
    store.finish_job(
        Lease(job.id, claim.job.lease_owner),
        state,
        error="seeded failure" if state == "FAILED" else None,
        final_bound=(k, 0.01) if k is not None else None,
    )


def _create(store, owner, preset: str, name: str, tags: list[str], steps: int | None = None, **kw):
    """A new run of `preset` (trained for its own step count unless `steps`): (run, job)."""
    from diffusion.presets import PRESETS

    config = PRESETS[preset].to_dict()
    total = config["train"]["steps"] if steps is None else steps
    return store.create_run(
        config, owner_id=owner.id, name=name, preset=preset, tags=tags, total_steps=total, **kw
    )


def seed_runs(store, owner, n: int) -> list[str]:
    from db.access import SYSTEM

    ids = []
    for i in range(n):
        preset = PRESET_NAMES[i % len(PRESET_NAMES)]
        tags = sorted({TAGS[i % len(TAGS)], TAGS[(i * 7) % len(TAGS)]})
        visibility = "team" if i % 3 == 0 else "private"
        run, job = _create(store, owner, preset, f"{preset}-{i:04d}", tags, visibility=visibility)
        kind = i % 20
        if kind < 14:
            _finish(store, run, job, "DONE", k=-1.5 + (i % 97) / 50)
        elif kind < 16:
            _finish(store, run, job, "FAILED")
        elif kind < 18:
            store.request_cancel(run.id, viewer=SYSTEM)
        elif kind == 18:
            _finish(store, run, job, "RUNNING")
        ids.append(run.id)
    return ids


def long_curve(points: int, first: int = 1) -> list:
    """MetricPoints of a loss curve over `points` logged steps from step `first`, with the
    bound (K on holdout and train, K - L_null) every 1,000 steps."""
    from db.entities import MetricPoint

    now = time.time()
    out = []
    for step in range(first, first + points):
        loss = 3.0 * math.exp(-step / (points / 6)) - 1.0 + 0.05 * math.sin(step / 7.0)
        out.append(MetricPoint("loss_bits", step, loss, now))
        if step % 1000 == 0:
            k = 1.0 - 2.0 * math.exp(-step / (points / 5))
            out += [
                MetricPoint("k_holdout_bits", step, k, now),
                MetricPoint("k_train_bits", step, k + 0.02, now),
                MetricPoint("k_minus_lnull_bits", step, k + 4.0, now),
            ]
    return out


def seed_long_run(store, owner, points: int) -> str:
    run, job = _create(store, owner, "swissroll", "long-curve", ["long"], points)
    curve = long_curve(points)
    for i in range(0, len(curve), 5000):
        store.append_metrics(run.id, curve[i : i + 5000])
    _finish(store, run, job, "DONE", k=1.0)
    return run.id


def _png(i: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(i)
    img = (rng.random((96, 96)) * 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def seed_gallery_run(store, owner, images: int) -> str:
    run, job = _create(store, owner, "deadleaves", "many-images", ["gallery"], images * 100)
    for i in range(images):
        step = (i + 1) * 100
        store.put_artifact(
            run.id,
            "gallery_png",
            _png(i),
            key=f"gallery-{step}.png",
            media_type="image/png",
            step=step,
            width=96,
            height=96,
        )
    _finish(store, run, job, "DONE", k=1.4)
    return run.id


def seed(store, *, runs: int, points: int, images: int) -> dict:
    owner = store.local_user()
    t0 = time.perf_counter()
    ids = seed_runs(store, owner, runs)
    long_id = seed_long_run(store, owner, points)
    gallery_id = seed_gallery_run(store, owner, images)
    return {
        "runs": len(ids) + 2,
        "long_run": long_id,
        "gallery_run": gallery_id,
        "points": points,
        "images": images,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--images", type=int, default=500)
    args = parser.parse_args(argv)
    if min(args.runs, args.points, args.images) < 1:
        parser.error("--runs, --points and --images must be >= 1")
    os.environ["DIFFLAB_DATA_DIR"] = str(args.data_dir)
    from db.store import Store

    store = Store.from_env()
    store.upgrade()
    seeded = seed(store, runs=args.runs, points=args.points, images=args.images)
    (args.data_dir / "seed.json").write_text(json.dumps(seeded))  # speed.py --team-dir reuses it
    print(json.dumps(seeded))
    return 0


if __name__ == "__main__":
    sys.exit(main())

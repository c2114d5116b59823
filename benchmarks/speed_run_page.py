"""How long one render of the run page takes, in process (Streamlit's AppTest, no browser).

    python benchmarks/speed_run_page.py [--repeats 5] [--points 50000] [--view Bound]

A fresh SQLite store holds one finished swiss-roll run written through the worker's sink
(tests/lab_seed.py: bound evaluations, galleries, a trajectory, a checkpoint) plus a long loss
curve of `--points` logged steps with the bound every 1,000 steps. Each repeat opens the run
page in a new AppTest session (as a new browser tab would) and times `AppTest.run()`:

- "cold": Streamlit's caches cleared before each repeat (the first visitor);
- "warm": caches kept (anyone opening the page again before the run changes).

Prints one JSON line with the medians (seconds) and every repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

APP = ROOT / "dashboard" / "app.py"


def seed(folder: Path, points: int) -> str:
    """The long finished run; returns its id."""
    from lab_seed import KINDS, seed_run

    from benchmarks.seed_team import long_curve
    from db.store import Store

    store = Store(f"sqlite:///{folder / 'difflab.db'}", artifact_root=folder / "artifacts")
    store.upgrade()
    run = seed_run(store, store.local_user(), KINDS[0], "DONE", folder, name="long curve")
    store.append_metrics(run.id, long_curve(points, first=61))
    store.engine.dispose()
    return run.id


def render(run_id: str, view: str | None) -> float:
    """Seconds for one AppTest run of the run page (after the app's first page is loaded)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=120)
    at.run()
    at.switch_page("views/run.py")
    at.query_params["id"] = run_id
    if view:
        at.query_params["view"] = view
    start = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - start
    if at.exception:
        raise SystemExit(f"the run page raised: {[e.value for e in at.exception]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--points", type=int, default=50_000)
    parser.add_argument("--view", default=None, help="the run page's view (tab) to open")
    args = parser.parse_args(argv)
    import streamlit as st

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ.update(
            DIFFLAB_DATA_DIR=str(folder),
            DIFFLAB_DATABASE_URL=f"sqlite:///{folder / 'difflab.db'}",
            DIFFLAB_ARTIFACT_DIR=str(folder / "artifacts"),
            DIFFLAB_TEAM_MODE="0",
        )
        run_id = seed(folder, args.points)
        render(run_id, args.view)  # imports and the app's first load, not timed
        cold, warm = [], []
        for _ in range(args.repeats):
            st.cache_data.clear()
            st.cache_resource.clear()
            cold.append(render(run_id, args.view))
            warm.append(render(run_id, args.view))
    print(
        json.dumps(
            {
                "points": args.points,
                "view": args.view,
                "cold_median_s": round(statistics.median(cold), 3),
                "warm_median_s": round(statistics.median(warm), 3),
                "cold_s": [round(x, 3) for x in cold],
                "warm_s": [round(x, 3) for x in warm],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

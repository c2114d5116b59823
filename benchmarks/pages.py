"""Every page of the dashboard in headless Chromium at 1280 x 800: a screenshot of each, and
the median of 3 loads of each (seconds from navigation until the page has rendered: script
finished, no spinner, every visible chart, table and image drawn).

The lab is the single-user dashboard (`streamlit run dashboard/server.py`) on a fresh data
folder whose store holds runs of every data kind in every state (tests/lab_seed.py: written
through the worker's own sink, not trained), and a share link to a private run.

    python benchmarks/pages.py [--shots screenshots] [--loads 3]

Writes benchmarks/results/pages.json (benchmarks/provenance.py) and PNGs in --shots.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for _p in (ROOT, ROOT / "tests"):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from benchmarks.speed_common import environ  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 800}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(data_dir: Path, only: tuple[str, ...] | None = None) -> dict[str, str]:
    """Runs of every kind and state (or only the "kind-state" labels given), and a share link
    to one of them; returns {label: run id, "share_token": token}."""
    from lab_seed import KINDS, STATES, seed_run

    from db.store import Store

    store = Store(f"sqlite:///{data_dir / 'difflab.db'}", artifact_root=data_dir / "artifacts")
    store.upgrade()
    user = store.local_user()
    ids = {}
    for kind in KINDS:
        for state in STATES:
            label = f"{kind.name}-{state.lower()}"
            if only is None or label in only:
                ids[label] = seed_run(store, user, kind, state, data_dir).id
    shared = "rgb32-done" if "rgb32-done" in ids else next(iter(ids))
    link = store.create_share_link([ids[shared]], viewer=user, title="shared")
    ids["share_token"] = link.token
    store.dispose()
    return ids


@contextlib.contextmanager
def seeded_dashboard(
    data_dir: Path, only: tuple[str, ...] | None = None
) -> Iterator[tuple[str, dict[str, str]]]:
    """(base URL, seeded ids) of a single-user dashboard on a freshly seeded store."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFLAB_")}
    env.update(
        DIFFLAB_DATA_DIR=str(data_dir),
        DIFFLAB_REDIS_URL="redis://127.0.0.1:1/0",  # no queue: the pages say so
        PYTHONPATH=str(ROOT),
        STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
    )
    with environ(DIFFLAB_DATA_DIR=str(data_dir)):
        ids = seed(data_dir, only)
    port = _free_port()
    log = open(data_dir / "streamlit.log", "w")  # noqa: SIM115
    streamlit = str(Path(sys.executable).parent / "streamlit")
    proc = subprocess.Popen(
        [streamlit, "run", "dashboard/server.py", "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError((data_dir / "streamlit.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield url, ids
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()


RUN_PAGES = ("points-done", "digits8-evaluating", "rgb32-done")
ALL_RUN_PAGES = (
    "points-done", "sequences-done", "digits8-done", "grey16-done", "grey32-done",
    "rgb32-done", "digits8-evaluating", "points-failed", "grey32-cancelled", "rgb32-queued",
)  # fmt: skip


def pages(ids: dict[str, str], runs: tuple[str, ...] = RUN_PAGES) -> dict[str, str]:
    """Every page once (the run page for a few runs; --all-runs: one of each kind and state)."""
    out = {
        "runs": "/",
        "new_run": "/new_run",
        "new_run_from_run": f"/new_run?from={ids['digits8-done']}",
    }
    for key in runs:
        out[f"run_{key}"] = f"/run?id={ids[key]}"
    out.update(
        gallery="/gallery",
        posterior="/posterior",
        team="/team",
        shared=f"/shared?token={ids['share_token']}",
        status="/status",
    )
    return out


# Rendered: the script has finished, no spinner or skeleton, a title, and every *visible*
# chart, table and image drawn (charts in tabs not shown are drawn when their tab opens).
RENDERED_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-testid="stSpinner"], [data-testid="stSkeleton"]'))
    return false;
  if (!document.querySelector('[data-testid="stMain"] h1, [data-testid="stMain"] h2'))
    return false;
  const shown = (e) => e.offsetParent !== null;
  for (const c of document.querySelectorAll('[data-testid="stPlotlyChart"]'))
    if (shown(c) && !c.querySelector('.main-svg')) return false;
  for (const d of document.querySelectorAll('[data-testid="stDataFrame"]'))
    if (shown(d) && !d.querySelector('canvas')) return false;
  for (const i of document.querySelectorAll('[data-testid="stMain"] img'))
    if (shown(i) && !i.complete) return false;
  return true;
}"""


def load(page, url: str) -> float:
    t0 = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_timeout(50)
    page.wait_for_function(RENDERED_JS, timeout=60_000, polling=20)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    from benchmarks import provenance

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", default=str(ROOT / "screenshots"))
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--all-runs", action="store_true", help="a run page of each kind/state")
    parser.add_argument("--out", default=str(provenance.RESULTS / "pages.json"))
    args = parser.parse_args(argv)
    run = provenance.start(argv)
    shots = Path(args.shots)
    shots.mkdir(parents=True, exist_ok=True)
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="difflab-pages-") as tmp,
        seeded_dashboard(Path(tmp) / "lab") as (base, ids),
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport=VIEWPORT)
        for name, path in pages(ids, ALL_RUN_PAGES if args.all_runs else RUN_PAGES).items():
            load(page, base + path)  # warm-up (first render of this page)
            times = [load(page, base + path) for _ in range(args.loads)]
            page.mouse.move(1275, 795)
            page.screenshot(path=str(shots / f"page-{name}.png"))
            errors = page.locator('[data-testid="stException"]').count()
            rows.append(
                {
                    "row": name,
                    "path": path.split("?")[0],
                    "loads_s": [round(t, 3) for t in times],
                    "median_s": round(statistics.median(times), 3),
                    "exceptions": errors,
                    "seeds": [0],
                    "split": {"data": "seeded runs (tests/lab_seed.py)"},
                    "train_seconds": 0.0,
                    "eval_seconds": round(sum(times), 3),
                }
            )
            print(f"{name:28s} median {rows[-1]['median_s']:.2f} s  {times}", flush=True)
        browser.close()
    provenance.write_results(
        args.out, run, rows, seeds=[0], split={"data": "seeded runs (tests/lab_seed.py)"},
        extra={"viewport": VIEWPORT, "loads": args.loads},
    )  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

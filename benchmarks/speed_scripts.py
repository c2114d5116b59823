"""The dashboard's page scripts alone, in this process (Streamlit's AppTest), on the seeded
team store: the server's share of a page load, without a browser.

A page in headless Chromium also pays for the browser loading Streamlit's front end, which on
a busy machine is most of a second whatever the page does; these figures say what each page's
own script costs, so that a slow page can be told from a slow browser. Reported, no target
(the browser's figures carry the targets).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchmarks.speed_common import Measurement, environ

APP = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
# page name (as in speed_dashboard) -> (script, query parameters)
SCRIPTS = {
    "runs": ("runs", {}),
    "gallery": ("gallery", {}),
    "status": ("status", {}),
    "team": ("team", {}),
    "run_long_curve": ("run", {"id": "long_run"}),
    "run_gallery": ("run", {"id": "gallery_run"}),
}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _report(name: str, times: list[float], what: str) -> Measurement:
    med = statistics.median(times)
    return Measurement(
        f"dashboard_script/{name}",
        med,
        1.5,
        med / 1.5,
        None,
        "report",
        "s",
        {"renders": len(times), "max_s": round(max(times), 3), "ratio": what},
    )


def script_times(
    folder: Path, seeded: dict, emit, *, renders: int, only: set[str] | None = None
) -> None:
    """Each page's script run `renders` times after a first render; the runs filter as the
    rerun after typing a search (the seeded long run's name)."""
    from streamlit.testing.v1 import AppTest

    with environ(DIFFLAB_DATA_DIR=str(folder), DIFFLAB_DATABASE_URL=None, DIFFLAB_TEAM_MODE="0"):
        at = AppTest.from_file(str(APP), default_timeout=600)
        at.run()
        for name, (script, query) in SCRIPTS.items():
            if only is not None and name not in only:
                continue
            at.switch_page(f"views/{script}.py")
            at.query_params.clear()
            at.query_params.update({k: seeded[v] for k, v in query.items()})
            at.run()
            times = [_timed(at.run) for _ in range(renders)]
            if at.exception:  # a page that failed would look fast
                raise RuntimeError(f"page {name} failed: {at.exception[0].message}")
            emit(_report(name, times, "median seconds of the script / 1.5 s (browser target)"))
        if only is None or "runs_filter" in only:
            emit(_report("runs_filter", _filter_times(at, renders), "median seconds / 1.5 s"))


def _filter_times(at, renders: int) -> list[float]:
    at.switch_page("views/runs.py")
    at.query_params.clear()
    at.run()
    times = []
    for _ in range(renders):
        search = at.text_input(key="runs_search")
        times.append(_timed(search.set_value("long-curve").run))
        at.text_input(key="runs_search").set_value("").run()
    return times

"""A run's metrics for other tools: CSV (scalar series, one row per point) and JSON (the run,
its config, every series with vectors). Used by the run page's downloads and `difflab export`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from db.access import Viewer
from db.store import Store

CSV_COLUMNS = ("metric", "step", "value", "wall_time")


def metrics_csv(store: Store, run_id: str, *, viewer: Viewer) -> str:
    """Every scalar point as metric,step,value,wall_time (vector points are in the JSON)."""
    series = store.metrics(run_id, viewer=viewer)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for name in sorted(series):
        for p in series[name]:
            if p.value is not None:
                writer.writerow((name, p.step, repr(float(p.value)), f"{p.wall_time:.3f}"))
    return buf.getvalue()


def _finite(value: float | None) -> float | str | None:
    """JSON has no NaN or infinity: those are written as the strings "nan", "inf", "-inf"."""
    if value is None or math.isfinite(value):
        return value
    return repr(float(value))


def metrics_json(store: Store, run_id: str, *, viewer: Viewer) -> str:
    """The run (id, name, state, steps, final bound, config) and every series, as JSON."""
    run = store.get_run(run_id, viewer=viewer)
    series = store.metrics(run_id, viewer=viewer)
    out: dict[str, Any] = {
        "run": {
            "id": run.id,
            "name": run.name,
            "owner": run.owner,
            "state": run.state,
            "step": run.step,
            "total_steps": run.total_steps,
            "final_bound_bits": run.final_bound_bits,
            "final_bound_stderr_bits": run.final_bound_stderr,
            "created_at": run.created_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "config": run.config,
        },
        "metrics": {
            name: [
                {"step": p.step, "value": _finite(p.value), "wall_time": p.wall_time}
                | ({"vector": list(p.vector)} if p.vector else {})
                for p in points
            ]
            for name, points in sorted(series.items())
        },
    }
    return json.dumps(out, indent=1)

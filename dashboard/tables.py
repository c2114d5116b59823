"""Runs as tables: the runs list, queue positions, and the parameters that differ.

Pure functions from store entities (plain dataclasses) to pandas frames.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from db.entities import QUEUED, Run
from db.rounding import round_to_se

RUNS_PAGE = 200  # the Runs table lists this many newest matching runs; "Show more" adds more
STATE_LABELS = {
    "QUEUED": "queued",
    "RUNNING": "running",
    "DONE": "done",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}
# Markdown badges for the run header (Material icons: no emoji font needed in the browser)
STATE_BADGES = {
    "QUEUED": ":gray-badge[:material/schedule: queued]",
    "RUNNING": ":blue-badge[:material/play_arrow: running]",
    "DONE": ":green-badge[:material/check_circle: done]",
    "FAILED": ":red-badge[:material/error: failed]",
    "CANCELLED": ":orange-badge[:material/stop_circle: cancelled]",
}


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"steps": 5}} -> {"train.steps": 5}; lists become comma-joined strings."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            if value:
                out.update(flatten(value, f"{name}."))
            else:
                out[name] = "{}"
        elif isinstance(value, (list, tuple)):
            out[name] = ", ".join(str(v) for v in value)
        else:
            out[name] = value
    return out


def config_keys(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The names `flatten` gives this config's fields, without converting any value."""
    out: list[str] = []
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            out += config_keys(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}")
    return out


def config_value(config: Mapping[str, Any], field: str) -> Any:
    """`flatten(config).get(field)`, reading only that field."""
    value: Any = config
    for part in field.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return flatten(config).get(field)  # a key with a dot in it: the slow way
        value = value[part]
    if isinstance(value, Mapping):
        return None if value else "{}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return value


def queue_positions(runs: Sequence[Run]) -> dict[str, int]:
    """1-based position of each QUEUED run in its queue (oldest first)."""
    queued = sorted((r for r in runs if r.state == QUEUED), key=lambda r: r.created_at)
    return positions_in_queues([(r.id, r.device_request) for r in queued])


def positions_in_queues(order: Sequence[tuple[str, str]]) -> dict[str, int]:
    """1-based position of each run in its queue, from (run id, device request) pairs oldest
    first (Store.queue_order)."""
    by_queue: dict[str, int] = {}
    out: dict[str, int] = {}
    for run_id, device_request in order:
        queue = "cpu" if device_request == "cpu" else "gpu"
        by_queue[queue] = by_queue.get(queue, 0) + 1
        out[run_id] = by_queue[queue]
    return out


def _cfg(run: Run, section: str, key: str) -> Any:
    return (run.config.get(section) or {}).get(key)


# Metric columns: label -> metric series (its value at the run's latest step)
METRIC_COLUMNS = {
    "K train (bits)": "k_train_bits",
    "K holdout (bits)": "k_holdout_bits",
    "K - L_null (bits)": "k_minus_lnull_bits",
    "bits/dim": "bits_per_dim",
}
SE_OF = {"k_train_bits": "k_train_stderr_bits", "k_holdout_bits": "k_holdout_stderr_bits"}
METRIC_NAMES = tuple(METRIC_COLUMNS.values()) + tuple(SE_OF.values())
BASE_COLUMNS = (
    "id",
    "name",
    "state",
    "progress",
    "queue",
    "data set",
    "step",
    *METRIC_COLUMNS,
    "duration (min)",
    "tags",
    "owner",
    "shared",
    "created",
    "device",
)
DEFAULT_COLUMNS = (  # fit 1280 px beside the sidebar with COLUMN_WIDTHS (tests/e2e: at 1280)
    "name",
    "state",
    "progress",
    "queue",
    "data set",
    "diffusion.T",
    "K holdout (bits)",
    "K - L_null (bits)",
)


# How each column is shown: (header, pixel width, help). The headers are short and the widths
# fixed so that the default columns fit the 818 px the table gets at a 1280 px window beside
# the sidebar (the bounds are in each run's own unit: bits per example, sequence or pixel).
UNIT_HELP = "in the run's unit (bits per example, per sequence or per pixel)"
COLUMN_LOOK: dict[str, tuple[str, int, str | None]] = {
    "id": ("id", 110, None),
    "name": ("name", 165, None),
    "state": ("state", 80, None),
    "progress": ("progress", 95, None),
    "queue": ("queue #", 75, "Position in its queue"),
    "data set": ("data set", 85, None),
    "diffusion.T": ("T", 60, "diffusion.T: the number of diffusion steps"),
    "train.steps": ("steps", 75, "train.steps"),
    "K train (bits)": (
        "K train",
        85,
        f"The bound K on training data at the latest evaluation, {UNIT_HELP}",
    ),
    "K holdout (bits)": (
        "K holdout",
        90,
        f"The bound K on the validation holdout at the latest evaluation, {UNIT_HELP}",
    ),
    "K - L_null (bits)": (
        "K - L_null",
        100,
        f"K holdout minus the null model's log-likelihood, {UNIT_HELP}",
    ),
    "bits/dim": ("bits/dim", 80, "Negative log-likelihood bound per dimension (8-bit images)"),
    "duration (min)": ("minutes", 80, "Duration of the run in minutes"),
    "shared": ("team", 60, "Shared with the team"),
}
NUMBER_COLUMNS = ("diffusion.T", "train.steps", *METRIC_COLUMNS, "duration (min)")


def column_config() -> dict[str, Any]:
    """The runs table's `st.dataframe` column_config: short headers, fixed widths, a help
    line that says the rest (full name, unit)."""
    import streamlit as st

    cc = st.column_config
    out: dict[str, Any] = {}
    for key, (label, width, help_text) in COLUMN_LOOK.items():
        if key == "progress":
            out[key] = cc.ProgressColumn(
                label, min_value=0, max_value=1, format="percent", width=width, help=help_text
            )
        elif key == "shared":
            out[key] = cc.CheckboxColumn(label, width=width, help=help_text)
        elif key in NUMBER_COLUMNS:
            out[key] = cc.NumberColumn(label, width=width, help=help_text)
        else:
            out[key] = cc.TextColumn(label, width=width, help=help_text)
    return out


def column_choices(runs: Sequence[Run], also: Sequence[str] = ()) -> list[str]:
    """Every column a user may pick: the base ones, then every config field of these runs
    (and the fields in `also`: columns already chosen, kept while no listed run has them)."""
    fields: set[str] = set(also)
    shapes: set[tuple[str, ...]] = set()
    for run in runs:
        shapes.add(tuple(config_keys(run.config)))
    for shape in shapes:
        fields.update(shape)
    return [*BASE_COLUMNS, *sorted(f for f in fields if f not in BASE_COLUMNS)]


def _duration_min(run: Run, now: dt.datetime | None) -> float | None:
    if run.started_at is None:
        return None
    end = run.finished_at or now or dt.datetime.now(dt.UTC)
    return round((end - run.started_at).total_seconds() / 60, 1)


def runs_frame(
    runs: Sequence[Run],
    positions: Mapping[str, int] | None = None,
    *,
    columns: Sequence[str] = DEFAULT_COLUMNS,
    metrics: Mapping[str, Mapping[str, float | None]] | None = None,
    now: dt.datetime | None = None,
) -> pd.DataFrame:
    """One row per run, in the given order, with the chosen columns (base or config fields).

    Bounds are rounded to their standard error (db.rounding) where it is known."""
    positions, metrics = positions or {}, metrics or {}
    rows = []
    for run in runs:
        values = metrics.get(run.id, {})
        row: dict[str, Any] = {
            "id": run.id,
            "name": run.name,
            "state": STATE_LABELS.get(run.state, run.state),
            "progress": float(run.progress),
            "queue": str(positions[run.id]) if run.id in positions else "",
            "data set": _cfg(run, "data", "name"),
            "step": run.step,
            "duration (min)": _duration_min(run, now),
            "tags": ", ".join(run.tags),
            "owner": run.owner,
            "shared": run.visibility == "team",
            "created": run.created_at.strftime("%Y-%m-%d %H:%M"),
            "device": run.device or run.device_request,
        }
        for label, name in METRIC_COLUMNS.items():
            value = values.get(name)
            if name == "k_holdout_bits" and value is None:
                value = run.final_bound_bits
            se = values.get(SE_OF.get(name, ""))
            row[label] = None if value is None else round_to_se(value, se)[0]
        rows.append({c: row[c] if c in row else config_value(run.config, c) for c in columns})
    return pd.DataFrame(rows, columns=list(columns))


def sort_frame(frame: pd.DataFrame, column: str | None, descending: bool) -> pd.DataFrame:
    """Rows sorted by one column (missing values last); unknown columns leave it as is."""
    if not column or column not in frame.columns:
        return frame
    return frame.sort_values(
        column, ascending=not descending, na_position="last", kind="stable", key=_sort_key
    )


def _sort_key(col: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(col, errors="coerce")
    if numeric.notna().sum() >= col.notna().sum():  # every present value is a number
        return numeric
    return col.astype(str).str.lower()


def filter_runs(
    runs: Sequence[Run],
    *,
    search: str = "",
    states: Sequence[str] = (),
    tags: Sequence[str] = (),
    datasets: Sequence[str] = (),
) -> list[Run]:
    """Runs matching every filter given (empty filters match all)."""
    text = search.strip().lower()
    out = []
    for run in runs:
        if text and text not in run.name.lower() and text not in run.id:
            continue
        if states and run.state not in states:
            continue
        if tags and not set(tags) & set(run.tags):
            continue
        if datasets and _cfg(run, "data", "name") not in datasets:
            continue
        out.append(run)
    return out


SORTS: dict[str, tuple[str, bool]] = {
    "newest first": ("created_at", True),
    "oldest first": ("created_at", False),
    "name": ("name", False),
    "state": ("state", False),
    "best bound first": ("final_bound_bits", True),
}


def sort_runs(runs: Sequence[Run], how: str) -> list[Run]:
    attr, reverse = SORTS.get(how, SORTS["newest first"])
    present = [r for r in runs if getattr(r, attr) is not None]
    missing = [r for r in runs if getattr(r, attr) is None]
    return sorted(present, key=lambda r: getattr(r, attr), reverse=reverse) + missing


def differing_parameters(runs: Sequence[Run]) -> pd.DataFrame:
    """The config fields whose values differ between runs: one row per field, a column per run."""
    flat = [flatten(r.config) for r in runs]
    keys = sorted(set().union(*flat)) if flat else []
    rows = {}
    for key in keys:
        values = [f.get(key) for f in flat]
        if len({repr(v) for v in values}) > 1:
            rows[key] = ["" if v is None else str(v) for v in values]
    labels = _unique_labels(runs)
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=labels)
    frame.index.name = "parameter"
    return frame


def _unique_labels(runs: Sequence[Run]) -> list[str]:
    return [f"{r.name} ({r.id[:6]})" for r in runs]

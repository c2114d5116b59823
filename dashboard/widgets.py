"""Small Streamlit building blocks shared by the pages (no store access here)."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from dashboard.tables import STATE_ICONS
from db.entities import Run


def field_error(errors: Mapping[str, str], key: str, label: str | None = None) -> None:
    """The validation message for one form field, right under its widget."""
    if key in errors:
        st.error(f"{label or key}: {errors[key]}", icon=":material/error:")


def run_header(run: Run) -> None:
    """Title line of a run: name, state, progress, who and where."""
    st.title(run.name)
    cols = st.columns([2, 3, 3])
    cols[0].markdown(f"**{STATE_ICONS.get(run.state, run.state)}**")
    total = run.total_steps or (run.config.get("train") or {}).get("steps") or 0
    cols[1].progress(run.progress, text=f"step {run.step:,} of {total:,}")
    where = f"{run.host} / {run.device}" if run.host else f"requested: {run.device_request}"
    cols[2].caption(f"id `{run.id}` · owner {run.owner} · {run.visibility} · {where}")
    if run.state == "FAILED" and run.error:
        st.error(f"The run failed: {run.error}")


def run_label(run: Run) -> str:
    return f"{run.name} · {run.state.lower()} · {run.id}"

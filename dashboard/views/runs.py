"""Runs: filter, sort and tag the runs you may see; pick the table's columns (any config
field, the bounds, bits/dim, duration); select some to compare, cancel, re-run, delete or
share. Columns and sort are kept in the address (?cols=...&sort=...&desc=1), so a view can be
bookmarked or sent."""

from __future__ import annotations

import streamlit as st

from dashboard import tables
from dashboard.selection import selection_actions
from dashboard.services import get_store, query_param, require_user
from db.entities import ACTIVE_STATES, STATES

user = require_user()
store = get_store()

st.title("Runs")
all_runs = store.list_runs(viewer=user, limit=1000)
datasets = sorted({(r.config.get("data") or {}).get("name", "?") for r in all_runs})
f1, f2, f3, f4 = st.columns([3, 2, 2, 2])
search = f1.text_input("Search", placeholder="name or id", key="runs_search")
states = f2.multiselect("State", STATES, key="runs_states")
tags = f3.multiselect("Tags", store.all_tags(viewer=user), key="runs_tags")
data_filter = f4.multiselect("Data set", datasets, key="runs_datasets")
choices = tables.column_choices(all_runs)
if "runs_columns" not in st.session_state:  # first visit: from the address, else defaults
    wanted = (query_param("cols") or "").split(",")
    st.session_state.runs_columns = [c for c in wanted if c in choices] or [
        c for c in tables.DEFAULT_COLUMNS if c in choices
    ]
    st.session_state.runs_sort_by = query_param("sort") if query_param("sort") in choices else None
    st.session_state.runs_desc = query_param("desc") == "1"
c1, c2, c3 = st.columns([6, 2, 1])
columns = c1.multiselect(
    "Columns",
    choices,
    key="runs_columns",
    help="Any config field (e.g. train.lr), the bounds at the latest evaluation, bits/dim "
    "and the run's duration. Kept in the address.",
)
sort_by = c2.selectbox(
    "Sort by", columns, key="runs_sort_by", index=None, placeholder="newest first"
)
descending = c3.toggle("Desc.", key="runs_desc")
st.query_params["cols"] = ",".join(columns)
if sort_by:
    st.query_params["sort"] = sort_by
    st.query_params["desc"] = "1" if descending else "0"
else:
    for key in ("sort", "desc"):
        st.query_params.pop(key, None)

active = any(r.state in ACTIVE_STATES for r in all_runs)


@st.fragment(run_every=3 if active else None)
def runs_table() -> None:
    """The table, live while something runs; selection drives the actions below it."""
    runs = store.list_runs(viewer=user, limit=1000)
    runs = tables.sort_runs(
        tables.filter_runs(runs, search=search, states=states, tags=tags, datasets=data_filter),
        "newest first",
    )
    if not runs:
        st.info(
            "No runs match. Start one on the New run page."
            if all_runs
            else "No runs yet. Start one on the New run page."
        )
        return
    metrics = store.latest_values([r.id for r in runs], tables.METRIC_NAMES, viewer=user)
    frame = tables.runs_frame(
        runs, tables.queue_positions(runs), columns=columns or ["name"], metrics=metrics
    )
    frame = tables.sort_frame(frame, sort_by, descending)
    runs = [runs[i] for i in frame.index]
    frame = frame.reset_index(drop=True)
    event = st.dataframe(
        frame,
        key="runs_table",
        hide_index=True,
        on_select="rerun",
        selection_mode="multi-row",
        width="stretch",
        column_config={
            "id": st.column_config.TextColumn("id", width="small"),
            "progress": st.column_config.ProgressColumn(
                "progress", min_value=0, max_value=1, format="percent", width="small"
            ),
            "queue": st.column_config.TextColumn(
                "queue #", help="Position in its queue", width="small"
            ),
            "shared": st.column_config.CheckboxColumn("team"),
            "name": st.column_config.TextColumn("name", width="medium"),
            "state": st.column_config.TextColumn("state", width="small"),
            "data set": st.column_config.TextColumn("data set", width="small"),
            **{
                c: st.column_config.NumberColumn(c, width="small")
                for c in ("diffusion.T", "train.steps", *tables.METRIC_COLUMNS, "duration (min)")
            },
        },
    )
    rows = event.selection.rows if event is not None else []
    chosen = [runs[i] for i in rows if i < len(runs)]
    if not chosen:
        st.caption(
            "Select rows (the boxes on the left) to open, compare, cancel, re-run, "
            "tag, share or delete runs."
        )
        return
    selection_actions(store, user, chosen)


runs_table()

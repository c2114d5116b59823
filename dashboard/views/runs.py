"""Runs: filter, sort and tag the runs you may see; select some to compare, cancel, re-run,
delete or share."""

from __future__ import annotations

import streamlit as st

from dashboard import tables
from dashboard.selection import selection_actions
from dashboard.services import get_store, require_user
from db.entities import ACTIVE_STATES, STATES

user = require_user()
store = get_store()

st.title("Runs")
all_runs = store.list_runs(viewer=user, limit=1000)
datasets = sorted({(r.config.get("data") or {}).get("name", "?") for r in all_runs})
f1, f2, f3, f4, f5 = st.columns([3, 2, 2, 2, 2])
search = f1.text_input("Search", placeholder="name or id", key="runs_search")
states = f2.multiselect("State", STATES, key="runs_states")
tags = f3.multiselect("Tags", store.all_tags(viewer=user), key="runs_tags")
data_filter = f4.multiselect("Data set", datasets, key="runs_datasets")
sort = f5.selectbox("Sort", list(tables.SORTS), key="runs_sort")

active = any(r.state in ACTIVE_STATES for r in all_runs)


@st.fragment(run_every=3 if active else None)
def runs_table() -> None:
    """The table, live while something runs; selection drives the actions below it."""
    runs = store.list_runs(viewer=user, limit=1000)
    runs = tables.sort_runs(
        tables.filter_runs(runs, search=search, states=states, tags=tags, datasets=data_filter),
        sort,
    )
    if not runs:
        st.info(
            "No runs match. Start one on the New run page."
            if all_runs
            else "No runs yet. Start one on the New run page."
        )
        return
    frame = tables.runs_frame(runs, tables.queue_positions(runs))
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
                "progress", min_value=0, max_value=1, format="percent"
            ),
            "queue": st.column_config.TextColumn("queue #", help="Position in its queue"),
            "K holdout (bits)": st.column_config.NumberColumn(format="%.3f"),
            "shared": st.column_config.CheckboxColumn("team"),
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

"""Runs: filter, sort and tag the runs you may see; pick the table's columns (any config
field, the bounds, bits/dim, duration); select some to compare, cancel, re-run, delete or
share. Columns and sort are kept in the address (?cols=...&sort=...&desc=1), so a view can be
bookmarked or sent."""

from __future__ import annotations

import streamlit as st

from dashboard import tables
from dashboard.selection import selection_actions
from dashboard.services import get_store, query_param, require_user
from db.entities import STATES
from db.store_run_lists import RunFilter

user = require_user()
store = get_store()
PAGE = tables.RUNS_PAGE

st.title("Runs")
facets = store.run_facets(viewer=user)  # counts, data sets, tags: no run loaded
f1, f2, f3, f4 = st.columns([3, 2, 2, 2])
search = f1.text_input("Search", placeholder="name or id", key="runs_search")
states = f2.multiselect("State", STATES, key="runs_states")
tags = f3.multiselect("Tags", facets.tags, key="runs_tags")
data_filter = f4.multiselect("Data set", facets.datasets, key="runs_datasets")
where = RunFilter(search=search, states=states, tags=tags, datasets=data_filter)
shown = st.session_state.setdefault("runs_shown", PAGE)
listed = store.list_runs(viewer=user, where=where, limit=shown)  # filtered by the database
st.session_state["runs_listed"] = listed  # the table below uses these, not a second read
choices = tables.column_choices(listed, also=st.session_state.get("runs_columns") or ())
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


# Live (the table alone rerun every few seconds) only while something can change by itself:
# an active run and a worker online to move it. Each rerun redraws the table, which on a busy
# machine keeps the page from settling (seconds to open it, measured), so not for nothing.
live = bool(facets.active) and bool(store.workers(online_within_s=60.0))


@st.fragment(run_every=3 if live else None)
def runs_table() -> None:
    """The table, live while something runs; selection drives the actions below it."""
    runs = st.session_state.pop("runs_listed", None)
    if runs is None:  # the table alone reruns (timer, selection): read the runs again
        runs = store.list_runs(viewer=user, where=where, limit=shown)
    if not runs:
        st.info(
            "No runs match. Start one on the New run page."
            if facets.total
            else "No runs yet. Start one on the New run page."
        )
        return
    metrics = store.latest_values([r.id for r in runs], tables.METRIC_NAMES, viewer=user)
    positions = tables.positions_in_queues(store.queue_order(viewer=user))
    frame = tables.runs_frame(runs, positions, columns=columns or ["name"], metrics=metrics)
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
        column_config=tables.column_config(),
    )
    more_rows(len(runs))
    rows = event.selection.rows if event is not None else []
    chosen = [runs[i] for i in rows if i < len(runs)]
    if not chosen:
        st.caption(
            "Select rows (the boxes on the left) to open, compare, cancel, re-run, "
            "tag, share or delete runs."
        )
        return
    selection_actions(store, user, chosen)


def more_rows(listed: int) -> None:
    """Say when the table holds only the newest runs that match, and offer more."""
    if listed < shown:
        return
    matching = store.count_runs(viewer=user, where=where)
    if matching <= listed:
        return
    left, right = st.columns([4, 1])
    left.caption(
        f"The newest {listed:,} of {matching:,} matching runs; sorting applies to these. "
        "Narrow the filters, or show more."
    )
    if right.button("Show more", key="runs_more", icon=":material/expand_more:"):
        st.session_state.runs_shown = shown + PAGE
        st.rerun()


runs_table()

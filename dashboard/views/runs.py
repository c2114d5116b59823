"""Runs: filter, sort and tag the runs you may see; select some to compare, cancel, re-run,
delete or share."""

from __future__ import annotations

import streamlit as st

from dashboard import tables
from dashboard.actions import ActionError, cancel_run, delete_run, rerun
from dashboard.compare import show_comparison
from dashboard.services import get_store, require_user, share_url
from db.entities import ACTIVE_STATES, STATES
from db.errors import StoreError

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
    runs = tables.sort_runs(tables.filter_runs(runs, search=search, states=states, tags=tags,
                                               datasets=data_filter), sort)
    if not runs:
        st.info("No runs match. Start one on the New run page." if all_runs else
                "No runs yet. Start one on the New run page.")
        return
    frame = tables.runs_frame(runs, tables.queue_positions(runs))
    event = st.dataframe(
        frame, key="runs_table", hide_index=True, on_select="rerun",
        selection_mode="multi-row", width="stretch",
        column_config={
            "id": st.column_config.TextColumn("id", width="small"),
            "progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=1,
                                                        format="percent"),
            "queue": st.column_config.NumberColumn("queue #", help="Position in its queue"),
            "K holdout (bits)": st.column_config.NumberColumn(format="%.3f"),
            "shared": st.column_config.CheckboxColumn("team"),
        },
    )
    rows = event.selection.rows if event is not None else []
    chosen = [runs[i] for i in rows if i < len(runs)]
    if not chosen:
        st.caption("Select rows (the boxes on the left) to open, compare, cancel, re-run, "
                   "tag, share or delete runs.")
        return
    selection_actions(chosen)


def selection_actions(chosen: list) -> None:
    st.markdown(f"**{len(chosen)} selected:** " + ", ".join(f"`{r.name}`" for r in chosen))
    b = st.columns(6)
    if len(chosen) == 1:
        b[0].page_link("views/run.py", label="Open", icon=":material/open_in_new:",
                       query_params={"id": chosen[0].id})
    if b[1].button("Cancel", icon=":material/stop_circle:", key="runs_cancel",
                   disabled=not any(r.state in ACTIVE_STATES for r in chosen)):
        act(lambda r: cancel_run(store, r.id, user), [r for r in chosen if r.state in
                                                           ACTIVE_STATES], "Cancel requested")
    if b[2].button("Re-run", icon=":material/replay:", key="runs_rerun"):
        act(lambda r: rerun(store, r.id, user), chosen, "Queued again")
    if b[3].button("Share link", icon=":material/link:", key="runs_share"):
        try:
            link = store.create_share_link([r.id for r in chosen], viewer=user)
            st.code(share_url(link.token), language=None)
            st.caption("Anyone allowed to see these runs can open this link.")
        except StoreError as exc:
            st.error(str(exc))
    with b[4].popover("Tag", icon=":material/sell:"):
        tag = st.text_input("Tag to add", key="runs_tag_text")
        if st.button("Add tag", key="runs_tag_add") and tag.strip():
            try:
                for r in chosen:
                    store.add_tag(r.id, tag, viewer=user)
                st.rerun()
            except StoreError as exc:
                st.error(str(exc))
    with b[5].popover("Delete", icon=":material/delete:"):
        st.write("Delete the selected runs with their metrics and files? This cannot be undone.")
        if st.button("Delete for good", type="primary", key="runs_delete"):
            act(lambda r: delete_run(store, r.id, user), chosen, "Deleted")
    if len(chosen) > 1:
        show_comparison(store, user, [r.id for r in chosen], key="runs_compare")


def act(fn, runs: list, done: str) -> None:
    failures = []
    for run in runs:
        try:
            fn(run)
        except ActionError as exc:
            failures.append(f"{run.name}: {exc}")
    if failures:
        st.error("\n\n".join(failures))
    else:
        st.toast(f"{done}: {len(runs)} run(s)")
        st.rerun()


runs_table()

"""Run: one run, live. Its bound against the paper's, the per-step KL, the schedule, the
reverse variance, the samples and the trajectory, files to download, notes, tags and share
links; the owner's actions (cancel, continue training, new run from this run)."""

from __future__ import annotations

import streamlit as st

from dashboard import runactions, runfiles, runpanels
from dashboard.services import get_store, query_param, require_user
from dashboard.widgets import run_label
from db.errors import NotFound

user = require_user()
store = get_store()

run_id = query_param("id")
if run_id is None:
    st.title("Run")
    runs = store.list_runs(viewer=user, limit=500)
    if not runs:
        st.info("No runs yet. Start one on the New run page.")
        st.stop()
    chosen = st.selectbox(
        "Open a run", runs, format_func=run_label, index=None, placeholder="Choose a run"
    )
    if chosen is None:
        st.stop()
    st.query_params["id"] = chosen.id
    run_id = chosen.id
try:
    run = store.get_run(run_id, viewer=user)
except NotFound:
    st.title("Run")
    st.error("Run not found or not shared with you.")
    st.stop()

runpanels.header(store, user, run)
runactions.actions(store, user, run)
runfiles.run_tabs(store, user, run, "Notes, tags, sharing")

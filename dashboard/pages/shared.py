"""Shared link: a run or a comparison that someone shared, for anyone allowed to see it."""

from __future__ import annotations

import streamlit as st

from dashboard import runpanels
from dashboard.compare import show_comparison
from dashboard.services import get_store, query_param, require_user
from db.errors import NotFound

NOT_FOUND = "Not found or not shared with you."
user = require_user()
store = get_store()

token = query_param("token")
if token is None:
    st.title("Shared link")
    pasted = st.text_input("Paste a share link or its token")
    if pasted.strip():
        token = pasted.strip().rsplit("token=", 1)[-1].split("&")[0]
if token is None:
    st.stop()
try:
    link = store.resolve_share_link(token, viewer=user)
except NotFound:
    st.title("Shared link")
    st.error(NOT_FOUND)
    st.stop()

if link.is_comparison:
    st.title(link.title or "Shared comparison")
    show_comparison(store, user, link.run_ids, key="shared_compare")
else:
    run = store.get_run(link.run_ids[0], viewer=user)
    runpanels.header(store, user, run)
    bound, samples, files = st.tabs(["Bound", "Samples", "Files"])
    with bound:
        runpanels.bound_panel(store, user, run)
    with samples:
        runpanels.samples_panel(store, user, run)
    with files:
        runpanels.files_panel(store, user, run)

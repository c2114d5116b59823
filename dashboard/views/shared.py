"""Shared link: a run or a comparison that someone shared, read only, for any signed-in
member who holds the link (even when the runs are private); revoked or expired links and
guessed tokens say "not found"."""

from __future__ import annotations

import streamlit as st

from dashboard import runfiles, runpanels
from dashboard.compare import show_comparison
from dashboard.safe_text import md_text
from dashboard.services import get_store, query_param, require_user
from db.errors import NotFound

NOT_FOUND = "Not found or not shared with you."
user = require_user()
store = get_store()


def token_from(text: str) -> str:
    """The token of a pasted share link (or the token itself)."""
    return text.strip().rsplit("token=", 1)[-1].split("&")[0].split("#")[0]


def paste_box(expanded: bool) -> None:
    with st.expander("Open another share link", expanded=expanded):
        st.text_input("Paste a share link or its token", key="shared_paste")


pasted = str(st.session_state.get("shared_paste") or "").strip()
token = token_from(pasted) if pasted else query_param("token")
if token is None:
    st.title("Shared link")
    st.caption("A share link opens a run or a comparison for anyone allowed to see it.")
    paste_box(expanded=True)
    st.stop()
try:
    link, viewer = store.share_viewer(token, viewer=user)
except NotFound:
    st.title("Shared link")
    st.error(NOT_FOUND)
    paste_box(expanded=True)
    st.stop()

if link.is_comparison:
    st.title(link.title or "Shared comparison")
    show_comparison(store, viewer, link.run_ids, key="shared_compare")
else:
    run = store.get_run(link.run_ids[0], viewer=viewer)
    runpanels.header(store, viewer, run)
    st.caption(f"Shared with you by a link, read only. Owner: {md_text(run.owner)}.")
    runfiles.run_tabs(store, viewer, run, "Notes and tags")
paste_box(expanded=False)

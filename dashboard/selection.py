"""Actions on the runs selected in the Runs table."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboard.actions import ActionError, cancel_run, delete_run, rerun
from dashboard.compare import show_comparison
from dashboard.safe_text import md_text
from dashboard.services import share_url
from db.access import may_edit
from db.entities import ACTIVE_STATES, Run, User
from db.errors import StoreError
from db.store import Store


def selection_actions(store: Store, user: User, chosen: list[Run]) -> None:
    """Buttons for the selected runs: open, cancel, re-run, share, tag, delete, compare."""
    st.markdown(f"**{len(chosen)} selected:** " + ", ".join(md_text(r.name) for r in chosen))
    owner = all(may_edit(r.owner_id, user) for r in chosen)  # only then: cancel, tag, delete
    b = st.columns(6)
    if len(chosen) == 1:
        b[0].page_link(
            "views/run.py",
            label="Open",
            icon=":material/open_in_new:",
            query_params={"id": chosen[0].id},
        )
    if owner and b[1].button(
        "Cancel",
        icon=":material/stop_circle:",
        key="runs_cancel",
        disabled=not any(r.state in ACTIVE_STATES for r in chosen),
    ):
        act(
            lambda r: cancel_run(store, r.id, user),
            [r for r in chosen if r.state in ACTIVE_STATES],
            "Cancel requested",
        )
    if b[2].button("Re-run", icon=":material/replay:", key="runs_rerun"):
        act(lambda r: rerun(store, r.id, user), chosen, "Queued again")
    if b[3].button("Share link", icon=":material/link:", key="runs_share"):
        try:
            link = store.create_share_link([r.id for r in chosen], viewer=user)
            st.code(share_url(link.token), language=None)
            st.caption("Anyone allowed to see these runs can open this link.")
        except StoreError as exc:
            st.error(md_text(exc))
    if owner:
        owner_actions(store, user, chosen, b[4], b[5])
    else:
        b[4].caption("Tag, cancel and delete: only for runs you own.")
    if len(chosen) > 1:
        show_comparison(store, user, [r.id for r in chosen], key="runs_compare")


def owner_actions(store: Store, user: User, chosen: list[Run], tag_col, delete_col) -> None:
    with tag_col.popover("Tag", icon=":material/sell:"):
        tag = st.text_input("Tag to add", key="runs_tag_text")
        if st.button("Add tag", key="runs_tag_add") and tag.strip():
            try:
                for r in chosen:
                    store.add_tag(r.id, tag, viewer=user)
                st.rerun()
            except StoreError as exc:
                st.error(md_text(exc))
    with delete_col.popover("Delete", icon=":material/delete:"):
        st.write("Delete the selected runs with their metrics and files? This cannot be undone.")
        if st.button("Delete for good", type="primary", key="runs_delete"):
            act(lambda r: delete_run(store, r.id, user), chosen, "Deleted")


def act(fn: Callable[[Run], object], runs: list[Run], done: str) -> None:
    """Apply an action to each run; show failures, or say it is done and refresh."""
    failures = []
    for run in runs:
        try:
            fn(run)
        except ActionError as exc:
            failures.append(md_text(f"{run.name}: {exc}"))
    if failures:
        st.error("\n\n".join(failures))
    else:
        st.toast(f"{done}: {len(runs)} run(s)")
        st.rerun()

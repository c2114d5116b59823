"""The run page's action row: cancel, continue training, evaluate on the test set, and a
new run from this run's config. Only the buttons the viewer may use are shown."""

from __future__ import annotations

import streamlit as st

from dashboard.actions import ActionError, cancel_run, continue_run, submit_posterior
from dashboard.safe_text import md_text
from db.access import LinkViewer, Viewer, may_edit
from db.entities import ACTIVE_STATES, CANCELLED, DONE, Run
from db.store import Store


def actions(store: Store, viewer: Viewer, run: Run) -> None:
    if isinstance(viewer, LinkViewer):
        return
    owner = may_edit(run.owner_id, viewer)
    cols = st.columns([3, 3, 3, 2])
    cols[0].page_link(
        "views/new_run.py",
        label="New run from this run",
        icon=":material/content_copy:",
        query_params={"from": run.id},
        help="Opens the New run form filled with this run's config, to change and queue.",
    )
    if not owner:
        return
    if run.state in ACTIVE_STATES and cols[3].button(
        "Cancel", icon=":material/stop_circle:", key="run_cancel"
    ):
        _do(
            lambda: cancel_run(store, run.id, viewer),
            "Cancel requested: the run stops "
            "at its next step or evaluation block and keeps its checkpoint.",
        )
    if run.state in (DONE, CANCELLED) and run.checkpoint_step is not None:
        with cols[1].popover("Continue training", icon=":material/fast_forward:"):
            extra = st.number_input(
                "More training steps",
                min_value=1,
                max_value=10_000_000,
                value=1000,
                step=100,
                key="run_more_steps",
            )
            st.caption(
                f"Trains this run from its checkpoint at step {run.checkpoint_step:,} to step "
                f"{run.checkpoint_step + int(extra):,}, then evaluates it again. The learning "
                "rate goes on from where it stopped (the schedule keeps its length; past its "
                "end it stays at the final rate)."
            )
            if st.button("Queue", type="primary", key="run_continue"):
                _do(lambda: continue_run(store, run.id, int(extra), viewer), "Queued again")
    if run.state == DONE and cols[2].button(
        "Test-set evaluation",
        icon=":material/rule:",
        key="run_full_eval",
        help="A separate job: the bound on the data set's test split (examples no run trains "
        "or validates on; the validation holdout where a data set has none). Its state and "
        "result show in the Bound view.",
    ):
        _do(
            lambda: submit_posterior(store, "evaluate", run.id, {"k": 1}, viewer),
            "Test-set evaluation queued",
        )


def _do(fn, done: str) -> None:
    try:
        fn()
    except ActionError as exc:
        st.error(md_text(exc))
        return
    st.toast(done)
    st.rerun()

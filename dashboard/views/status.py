"""Status: workers online and their devices, queue lengths, jobs by state, recent failures."""

from __future__ import annotations

import streamlit as st

from dashboard.services import get_store, require_user
from dashboard.status import queue_lengths

user = require_user()
store = get_store()
st.title("Status")


@st.fragment(run_every=5)
def status() -> None:
    workers = store.workers(online_within_s=60.0)
    queues, queue_error = queue_lengths()
    counts = store.job_counts()
    m = st.columns(4)
    m[0].metric("Workers online", len(workers))
    m[1].metric("Waiting in gpu queue", "-" if queues is None else queues.get("gpu", 0))
    m[2].metric("Waiting in cpu queue", "-" if queues is None else queues.get("cpu", 0))
    m[3].metric("Jobs running", counts.get("RUNNING", 0))
    if queue_error:
        st.warning(queue_error)
    st.subheader("Workers")
    if workers:
        st.dataframe(
            [
                {
                    "name": w.name,
                    "host": w.host,
                    "device": w.device,
                    "queues": ", ".join(w.queues),
                    "job": w.current_job_id or "idle",
                    "last seen": w.last_seen.strftime("%H:%M:%S"),
                }
                for w in workers
            ],
            hide_index=True,
            width="stretch",
        )
    else:
        st.info("No worker has reported in the last minute. Start one with `difflab worker`.")
    st.subheader("Jobs by state")
    st.dataframe(
        [{"state": k, "jobs": v} for k, v in sorted(counts.items())],
        hide_index=True,
        width="content",
    )
    st.subheader("Recent failures")
    failures = store.recent_failures(viewer=user, limit=20)
    if not failures:
        st.caption("None.")
    for job in failures:
        when = (job.finished_at or job.updated_at).strftime("%Y-%m-%d %H:%M")
        with st.expander(f"{job.kind} job {job.id} on run {job.run_id} · {when}"):
            st.code(job.error or "(no message)", language=None)


status()

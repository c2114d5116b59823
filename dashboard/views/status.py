"""Status: each worker's device (GPU memory), current job and step, last heartbeat; queue
lengths per queue; jobs by state; recent failures. Every number comes from the same reads."""

from __future__ import annotations

import contextlib

import streamlit as st

from dashboard.safe_text import md_text
from dashboard.services import get_store, require_user
from dashboard.status import queue_lengths, worker_rows
from db.access import SYSTEM
from db.errors import NotFound
from db.session import utcnow

user = require_user()
store = get_store()
st.title("Status")


@st.fragment(run_every=5)
def status() -> None:
    workers = store.workers(online_within_s=60.0)
    queues, queue_error = queue_lengths()
    running = store.list_jobs(viewer=SYSTEM, states=["RUNNING"], limit=500)
    waiting = store.list_jobs(viewer=SYSTEM, states=["QUEUED"], limit=5000)
    counts = store.job_counts()
    runs = {}
    for job in running:
        with contextlib.suppress(NotFound):  # a run deleted meanwhile: shown without its step
            runs[job.run_id] = store.get_run(job.run_id, viewer=SYSTEM)
    m = st.columns(4)
    m[0].metric("Workers online", len(workers))
    m[1].metric("Jobs running", len(running))
    for col, name in ((m[2], "gpu"), (m[3], "cpu")):
        queued = sum(1 for j in waiting if j.queue == name)
        broker = "-" if queues is None else queues.get(name, 0)
        col.metric(
            f"Queued for {name}",
            queued,
            help=f"Jobs waiting for a {name} worker; messages in the broker's {name} queue: "
            f"{broker}.",
        )
    if queue_error:
        st.warning(queue_error)
    st.subheader("Workers")
    if workers:
        st.dataframe(
            worker_rows(workers, running, runs, utcnow()), hide_index=True, width="stretch"
        )
    else:
        st.info("No worker has reported in the last minute. Start one with `difflab worker`.")
    orphans = [
        j
        for j in running
        if not any((j.lease_owner or "").split("#", 1)[0] == w.name for w in workers)
    ]
    if orphans:
        st.warning(
            f"{len(orphans)} running job(s) held by a worker that has not reported in the last "
            "minute; the reconciler re-queues them when their lease expires."
        )
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
        with st.expander(md_text(f"{job.kind} job {job.id} on run {job.run_id} · {when}")):
            st.code(job.error or "(no message)", language=None)


status()

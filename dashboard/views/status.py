"""Status: each worker's device (GPU memory), current job and step, last heartbeat; queue
lengths per queue; jobs by state; recent failures. Every number comes from the same reads."""

from __future__ import annotations

import streamlit as st

from dashboard.safe_text import md_text
from dashboard.services import get_store, require_user
from dashboard.status import queue_lengths, worker_rows
from db.access import SYSTEM
from db.session import utcnow

user = require_user()
store = get_store()
st.title("Status")


@st.fragment(run_every=5)
def status() -> None:
    workers = store.workers(online_within_s=60.0)
    queues, queue_error = queue_lengths()
    running = store.list_jobs(viewer=SYSTEM, states=["RUNNING"], limit=500)
    waiting = store.queued_per_queue()
    counts = store.job_counts()
    names = {w.name for w in workers}
    held = [j.run_id for j in running if (j.lease_owner or "").split("#", 1)[0] in names]
    # the runs of the jobs the workers hold, in one read (a run deleted meanwhile is absent:
    # its job is shown without its step)
    runs = {r.id: r for r in store.list_runs(viewer=SYSTEM, ids=held, limit=len(held) or 1)}
    m = st.columns(4)
    m[0].metric("Workers online", len(workers))
    m[1].metric("Jobs running", len(running))
    for col, name in ((m[2], "gpu"), (m[3], "cpu")):
        queued = waiting.get(name, 0)
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

"""Queue lengths for the Status page, with a readable message when Redis is down."""

from __future__ import annotations


def queue_lengths() -> tuple[dict[str, int] | None, str | None]:
    """(messages waiting per queue, None) or (None, why they could not be read)."""
    try:
        from worker.api import BrokerUnavailable
        from worker.api import queue_lengths as read
    except ImportError as exc:  # pragma: no cover - the worker package is part of the lab
        return None, f"The queue cannot be read here ({exc})."
    try:
        return read(), None
    except (BrokerUnavailable, OSError) as exc:
        return None, f"The job queue is not reachable: {exc}"


def worker_rows(workers, running_jobs, runs_by_id, now) -> list[dict]:
    """One row per worker: device, GPU memory, its current job and step, last heartbeat.

    The current job is read from the jobs themselves (a running job's lease names the worker
    that holds it), so the table agrees with the "Jobs running" count above it."""
    rows = []
    for w in workers:
        info = w.device_info or {}
        mine = [j for j in running_jobs if (j.lease_owner or "").split("#", 1)[0] == w.name]
        job = mine[0] if mine else None
        used, total = info.get("memory_used_mib"), info.get("memory_total_mib")
        memory = f"{used / 1024:.1f} / {total / 1024:.1f} GiB" if used is not None else "-"
        doing = "idle"
        if job is not None:
            run = runs_by_id.get(job.run_id)
            doing = f"{job.kind} {job.id} (run {job.run_id})"
            if job.kind == "train" and run is not None:
                doing += f", step {run.step:,} of {run.total_steps:,}"
            if job.message and not job.message.startswith("step "):
                doing += f": {job.message}"
        rows.append(
            {
                "worker": w.name,
                "host": w.host,
                "device": f"{w.device} · {info['name']}" if info.get("name") else w.device,
                "GPU memory used / total": memory,
                "queues": ", ".join(w.queues),
                "current job": doing,
                "last heartbeat": f"{max(0, round((now - w.last_seen).total_seconds()))} s ago",
            }
        )
    return rows

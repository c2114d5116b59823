"""The run page's test-set evaluation: the separate `evaluate` job (worker.job_runner) the
owner starts from the action row, its state while queued or running, and its result once done.

The result is the job's `evaluation` artifact (JSON): K with its standard error, K - L_null,
bits/dim (8-bit images), the number of examples and the split they came from (the data set's
test split, or its validation holdout where it has none). Every number is rounded to its
standard error (db.rounding); K - L_null has K's standard error (L_null is exact).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import streamlit as st

from dashboard.safe_text import md_text
from db.access import Viewer
from db.entities import ACTIVE_STATES, DONE, Job, Run
from db.errors import NotFound
from db.rounding import fmt_se
from db.store import Store

LIVE_SECONDS = 2.0


@dataclass(frozen=True)
class Evaluation:
    """The newest evaluate job of a run, and the newest finished result (maybe older)."""

    job: Job
    result: dict[str, Any] | None
    result_job: Job | None


def latest_evaluation(store: Store, viewer: Viewer, run: Run) -> Evaluation | None:
    """None if nobody has started a test-set evaluation of this run."""
    jobs = store.list_jobs(viewer=viewer, run_id=run.id, kinds=["evaluate"], limit=50)
    if not jobs:
        return None
    for job in jobs:  # newest first
        if job.state != DONE:
            continue
        arts = store.list_artifacts(run.id, viewer=viewer, kind="evaluation", job_id=job.id)
        if not arts:
            continue
        try:
            result = json.loads(store.artifact_bytes(arts[-1], viewer=viewer))
        except (NotFound, ValueError):
            continue
        return Evaluation(jobs[0], result, job)
    return Evaluation(jobs[0], None, None)


def result_rows(result: dict[str, Any]) -> dict[str, str]:
    """The result's numbers as people read them, each rounded to its standard error."""
    se = result.get("stderr_bits")
    unit = result.get("unit") or "bits"
    rows = {
        "K": f"{fmt_se(result.get('bits'), se)} {unit}",
        "K - L_null": f"{fmt_se(result.get('k_minus_lnull_bits'), se)} {unit}",
    }
    if result.get("bits_per_dim") is not None:
        rows["bits/dim"] = fmt_se(result["bits_per_dim"], result.get("bits_per_dim_stderr"))
    rows["examples"] = f"{int(result.get('examples') or 0):,}"
    rows["split"] = str(result.get("split") or "validation")
    return rows


def result_table(rows: dict[str, str]) -> str:
    """One Markdown table row (compact: a K with its standard error fits at 1280 px)."""
    head = " | ".join(md_text(k) for k in rows)
    body = " | ".join(md_text(v) for v in rows.values())
    return f"| {head} |\n|{'---|' * len(rows)}\n| {body} |"


def evaluation_panel(store: Store, viewer: Viewer, run: Run) -> None:
    """The test-set evaluation, live while its job is queued or running."""
    first = latest_evaluation(store, viewer, run)
    if first is None:
        return

    @st.fragment(run_every=LIVE_SECONDS if first.job.state in ACTIVE_STATES else None)
    def _panel() -> None:
        ev = latest_evaluation(store, viewer, run) or first
        st.markdown("**Test-set evaluation**")
        job = ev.job
        if job.state in ACTIVE_STATES:
            line = md_text(job.message) if job.message else "waiting for a worker"
            st.info(f"{job.state.lower()}: {line}", icon=":material/hourglass_top:")
        elif ev.result_job is not job:
            said = md_text(job.error or job.message or job.state.lower())
            st.warning(f"The latest evaluation did not finish ({said}).")
        if ev.result is not None:
            st.markdown(result_table(result_rows(ev.result)))
            how = ev.result.get("split_how")
            step = ev.result.get("checkpoint_step")
            st.caption(
                f"Bound at the checkpoint of step {step:,}, k = {ev.result.get('k', 1)}"
                + (f"; {md_text(how)}" if how else "")
                + "."
                if step is not None
                else md_text(how or "")
            )

    _panel()

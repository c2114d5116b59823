"""Jobs: the unit of work a worker takes (train, sample, denoise, inpaint, evaluate).

A worker *claims* a job with one conditional UPDATE (same message id, not final, no live
lease), which is what keeps two workers from running the same job. While it runs it renews
a lease; every write it makes is fenced by that lease. A train job mirrors its state, host,
device, lease and progress onto its run.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db import convert
from db.access import Viewer, check_edit, viewable_child, viewable_run, visible_clause
from db.entities import (
    ACTIVE_STATES,
    CANCELLED,
    DONE,
    FAILED,
    FINAL_STATES,
    JOB_KINDS,
    QUEUED,
    Claim,
    Job,
    User,
)
from db.errors import InvalidInput, NotFound, PermissionDenied
from db.job_rows import (  # noqa: F401 (UPLOAD_PARAMS is re-exported)
    UPLOAD_PARAMS,
    Lease,
    check_lease,
    check_uploads,
    claim_statement,
    mirror_claim_on_run,
)
from db.models import JobRow, RunRow
from db.session import added, utcnow
from db.store_reconcile import ReconcileMixin
from db.store_runs import queued_job_row

MAX_ATTEMPTS = 5  # a job whose worker dies this many times is FAILED, not retried forever


class JobsMixin(ReconcileMixin):
    def create_job(
        self,
        kind: str,
        run_id: str,
        params: dict[str, Any],
        *,
        owner_id: int,
        viewer: Viewer,
        queue: str = "cpu",
    ) -> Job:
        """A QUEUED job against a run that `viewer` may see (enqueue after this returns)."""
        if kind not in JOB_KINDS or kind == "train":
            raise InvalidInput(f"job kind must be one of {JOB_KINDS[1:]}, not {kind!r}")
        if isinstance(viewer, User) and viewer.id != owner_id:
            raise PermissionDenied("a job is submitted by its owner")
        now = utcnow()
        with self._scope(write=True) as s:
            run = viewable_run(s, run_id, viewer)
            check_uploads(s, params, owner_id)
            if run.checkpoint_step is None and run.state != DONE:
                raise InvalidInput(f"run {run_id} has no checkpoint yet; wait until it trains")
            row = queued_job_row(kind, run_id, owner_id, params, queue, now)
            return convert.job(added(s, row))

    def get_job(self, job_id: str, *, viewer: Viewer) -> Job:
        with self._scope() as s:
            return convert.job(viewable_child(s, JobRow, job_id, viewer, f"job {job_id!r}"))

    def list_jobs(
        self,
        *,
        viewer: Viewer,
        run_id: str | None = None,
        states: Sequence[str] | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = 200,
    ) -> list[Job]:
        q = select(JobRow).join(RunRow, RunRow.id == JobRow.run_id).where(visible_clause(viewer))
        if run_id is not None:
            q = q.where(JobRow.run_id == run_id)
        if states:
            q = q.where(JobRow.state.in_(list(states)))
        if kinds:
            q = q.where(JobRow.kind.in_(list(kinds)))
        q = q.order_by(JobRow.created_at.desc()).limit(limit)
        with self._scope() as s:
            return [convert.job(r) for r in s.scalars(q)]

    def train_job(self, run_id: str) -> Job:
        """The latest train job of a run (system use)."""
        q = (
            select(JobRow)
            .where(JobRow.run_id == run_id, JobRow.kind == "train")
            .order_by(JobRow.created_at.desc())
            .limit(1)
        )
        with self._scope() as s:
            row = s.scalars(q).first()
            if row is None:
                raise NotFound(f"run {run_id!r} has no train job")
            return convert.job(row)

    def recent_failures(self, *, viewer: Viewer, limit: int = 20) -> list[Job]:
        return self.list_jobs(viewer=viewer, states=[FAILED], limit=limit)

    def job_counts(self) -> dict[str, int]:
        """Number of jobs per state."""
        with self._scope() as s:
            rows = s.execute(select(JobRow.state, func.count()).group_by(JobRow.state))
            return {state: int(n) for state, n in rows}

    def queued_per_queue(self) -> dict[str, int]:
        """Number of QUEUED jobs per queue (`gpu`, `cpu`), counted by the database."""
        q = select(JobRow.queue, func.count()).where(JobRow.state == QUEUED).group_by(JobRow.queue)
        with self._scope() as s:
            return {queue: int(n) for queue, n in s.execute(q)}

    def request_job_cancel(self, job_id: str, *, viewer: Viewer) -> Job:
        now = utcnow()
        with self._scope(write=True) as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFound(f"no job {job_id!r}")
            check_edit(s.get(RunRow, row.run_id), viewer, row.run_id)
            if row.state in ACTIVE_STATES:
                row.cancel_requested, row.updated_at = True, now
                if row.state == QUEUED and row.lease_owner is None:
                    row.state, row.finished_at = CANCELLED, now
            s.flush()
            return convert.job(row)

    # ---- the worker's side -------------------------------------------------------------

    def mark_enqueued(self, job_id: str, celery_id: str) -> None:
        with self._scope(write=True) as s:
            s.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.celery_id == celery_id)
                .values(enqueued_at=utcnow())
            )

    def claim_job(
        self,
        job_id: str,
        celery_id: str,
        *,
        worker: str,
        host: str,
        device: str,
        lease_s: float,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> Claim:
        """Take a job for this message, or say why not (stale message, final, held, cancelled).

        A lease held under this same worker name is taken over at once: Celery delivers a
        message twice to one worker only after the pool process running it died."""
        now = utcnow()
        owner = f"{worker}#{secrets.token_hex(4)}"
        with self._scope(write=True) as s:
            row = s.get(JobRow, job_id)
            if row is None:
                return Claim(False, None, "gone")
            refusal = self._claim_refusal(s, row, celery_id, worker, now, max_attempts)
            if refusal is not None:
                return refusal
            result = s.execute(
                claim_statement(job_id, celery_id, worker, owner, host, device, now, lease_s)
            )
            if result.rowcount != 1:
                return Claim(False, convert.job(row), "held by another worker")
            s.refresh(row)
            resume = None
            if row.kind == "train":
                resume = mirror_claim_on_run(s, row, owner, host, device, now)
            return Claim(True, convert.job(row), "", resume)

    def _claim_refusal(
        self,
        s: Session,
        row: JobRow,
        celery_id: str,
        worker: str,
        now: dt.datetime,
        max_attempts: int,
    ) -> Claim | None:
        """Why this message may not take the job (a final, stale, cancelled or too-often-died
        job; the last two are finished here, in the claim's transaction), or None."""
        if row.state in FINAL_STATES:
            return Claim(False, convert.job(row), "final")
        if row.celery_id != celery_id:
            return Claim(False, convert.job(row), "stale message")
        if row.cancel_requested:
            self._finish(s, row, CANCELLED, now, message="cancelled before it started")
            return Claim(False, convert.job(row), "cancelled")
        live = (
            row.lease_owner is not None
            and row.lease_expires_at is not None
            and row.lease_expires_at >= now
            and not row.lease_owner.startswith(f"{worker}#")
        )
        if row.attempts >= max_attempts and not live:
            self._finish(
                s,
                row,
                FAILED,
                now,
                error=(
                    f"gave up after {row.attempts} attempts: the worker running this job "
                    "died each time (out of memory?)"
                ),
            )
            return Claim(False, convert.job(row), "too many attempts")
        return None

    def heartbeat(self, lease: Lease, lease_s: float) -> bool:
        """Extend the lease; returns whether a cancel was requested. Raises LeaseLost."""
        now = utcnow()
        with self._scope(write=True) as s:
            row = check_lease(s, lease)
            row.lease_expires_at = now + dt.timedelta(seconds=lease_s)
            row.updated_at = now
            if row.kind == "train":
                run = s.get(RunRow, row.run_id)
                if run is not None:
                    run.lease_expires_at = row.lease_expires_at
                    run.cancel_requested = run.cancel_requested or row.cancel_requested
                    row.cancel_requested = run.cancel_requested
            return row.cancel_requested

    def cancel_requested(self, job_id: str) -> bool:
        """Whether a cancel was asked for this job or its run (a cheap read, polled often)."""
        with self._scope() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                return False
            if row.cancel_requested:
                return True
            run = s.get(RunRow, row.run_id) if row.kind == "train" else None
            return bool(run is not None and run.cancel_requested)

    def update_progress(
        self,
        lease: Lease,
        *,
        progress: float,
        message: str | None = None,
        step: int | None = None,
        total_steps: int | None = None,
        checkpoint_step: int | None = None,
    ) -> None:
        now = utcnow()
        with self._scope(write=True) as s:
            row = check_lease(s, lease)
            row.progress = max(0.0, min(1.0, float(progress)))
            if message is not None:
                row.message = message[:2000]
            row.updated_at = now
            if row.kind == "train":
                run = s.get(RunRow, row.run_id)
                if run is not None:
                    if step is not None:
                        run.step = step
                    if total_steps is not None:
                        run.total_steps = total_steps
                    if checkpoint_step is not None:
                        run.checkpoint_step = checkpoint_step
                    run.updated_at = now

    def finish_job(
        self,
        lease: Lease,
        state: str,
        *,
        error: str | None = None,
        message: str | None = None,
        final_bound: tuple[float, float] | None = None,
    ) -> Job:
        """End a held job: DONE, FAILED (with the message shown to the user) or CANCELLED."""
        if state not in FINAL_STATES:
            raise InvalidInput(f"a job ends in one of {FINAL_STATES}, not {state!r}")
        with self._scope(write=True) as s:
            row = check_lease(s, lease)
            self._finish(
                s, row, state, utcnow(), error=error, message=message, final_bound=final_bound
            )
            return convert.job(row)

    def _finish(
        self,
        s: Session,
        row: JobRow,
        state: str,
        now: dt.datetime,
        *,
        error: str | None = None,
        message: str | None = None,
        final_bound: tuple[float, float] | None = None,
    ) -> None:
        row.state, row.finished_at, row.updated_at = state, now, now
        row.lease_owner, row.lease_expires_at = None, None
        row.error = error
        if message is not None:
            row.message = message[:2000]
        if state == DONE:
            row.progress = 1.0
        if row.kind != "train":
            return
        run = s.get(RunRow, row.run_id)
        if run is None:
            return
        run.state, run.finished_at, run.updated_at, run.error = state, now, now, error
        run.lease_owner, run.lease_expires_at = None, None
        if state == DONE:
            run.step = max(run.step, run.total_steps)
        if final_bound is not None:
            run.final_bound_bits, run.final_bound_stderr = final_bound

    def release_job(self, lease: Lease) -> Job:
        """Give a held job back (its worker is shutting down): QUEUED under a new message id,
        to be sent again at once by the caller; a train job's run goes back to QUEUED."""
        now = utcnow()
        with self._scope(write=True) as s:
            row = check_lease(s, lease)
            row.state, row.celery_id = QUEUED, secrets.token_hex(16)
            row.lease_owner = row.lease_expires_at = row.enqueued_at = None
            row.attempts = max(0, row.attempts - 1)  # a clean hand-back is not a failure
            row.updated_at = now
            if row.kind == "train":
                run = s.get(RunRow, row.run_id)
                if run is not None:
                    run.state, run.lease_owner, run.lease_expires_at = QUEUED, None, None
                    run.updated_at = now
            s.flush()
            return convert.job(row)

"""Jobs, the reconciler's side: find jobs whose message was lost or whose worker died, and
give them a new message id (JobsMixin in db.store_jobs builds on this)."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import or_, select, update

from db import convert
from db.entities import ACTIVE_STATES, QUEUED, RUNNING, Job
from db.models import JobRow, RunRow
from db.session import StoreBase, utcnow


class ReconcileMixin(StoreBase):
    def stale_jobs(self, *, queued_grace_s: float) -> list[Job]:
        """QUEUED jobs not enqueued for `queued_grace_s` (the broker may have lost them) and
        RUNNING jobs whose lease has expired (their worker died)."""
        now = utcnow()
        cutoff = now - dt.timedelta(seconds=queued_grace_s)
        q = select(JobRow).where(
            or_(
                (JobRow.state == QUEUED)
                & JobRow.lease_owner.is_(None)
                & or_(JobRow.enqueued_at.is_(None), JobRow.enqueued_at < cutoff)
                & (JobRow.created_at < cutoff),
                (JobRow.state == RUNNING) & (JobRow.lease_expires_at < now),
            )
        )
        with self._scope() as s:
            return [convert.job(r) for r in s.scalars(q)]

    def requeue_job(self, job_id: str, expected_celery_id: str | None) -> str | None:
        """Give a stale job a new message id (the old message, if it ever comes, is ignored).
        Returns the new id, or None if the job changed meanwhile."""
        now = utcnow()
        new_id = secrets.token_hex(16)
        with self._scope(write=True) as s:
            result = s.execute(
                update(JobRow)
                .where(
                    JobRow.id == job_id,
                    JobRow.celery_id == expected_celery_id,
                    JobRow.state.in_(ACTIVE_STATES),
                    or_(JobRow.lease_owner.is_(None), JobRow.lease_expires_at < now),
                )
                .values(
                    state=QUEUED,
                    celery_id=new_id,
                    lease_owner=None,
                    lease_expires_at=None,
                    enqueued_at=None,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                return None
            row = s.get(JobRow, job_id)
            if row is not None and row.kind == "train":
                run = s.get(RunRow, row.run_id)
                if run is not None and run.state == RUNNING:
                    run.state, run.lease_owner, run.lease_expires_at = QUEUED, None, None
                    run.updated_at = now
            return new_id

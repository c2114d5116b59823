"""Job rows outside the Store's methods: the lease a worker holds, the checks every job
write makes, and the claim's conditional UPDATE (used by db.store_jobs, which re-exports
Lease, check_lease and check_uploads)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Update, func, or_, update
from sqlalchemy.orm import Session

from db.entities import ACTIVE_STATES, RUNNING
from db.errors import InvalidInput, LeaseLost, NotFound
from db.models import JobRow, RunRow, UploadRow


@dataclass(frozen=True)
class Lease:
    """Proof that a worker holds a job: the job id and the claim's unique owner token."""

    job_id: str
    owner: str


def check_lease(s: Session, lease: Lease) -> JobRow:
    row = s.get(JobRow, lease.job_id)
    if row is None or row.lease_owner != lease.owner or row.state != RUNNING:
        raise LeaseLost(f"job {lease.job_id}: lease lost")
    return row


UPLOAD_PARAMS = ("upload_id", "mask_upload_id")


def check_uploads(s: Session, params: dict[str, Any], owner_id: int) -> None:
    """Every upload a job names must be its owner's own (NotFound otherwise: no hint)."""
    for key in UPLOAD_PARAMS:
        if key not in params:
            continue
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{key} must be an upload id (an integer), not {value!r}")
        row = s.get(UploadRow, value)
        if row is None or row.owner_id != owner_id:
            raise NotFound(f"no upload {value}")


def claim_statement(
    job_id: str,
    celery_id: str,
    worker: str,
    owner: str,
    host: str,
    device: str,
    now: dt.datetime,
    lease_s: float,
) -> Update:
    """The claim's one conditional UPDATE: same message id, not final, no live lease (a lease
    held under this same worker name does not count)."""
    return (
        update(JobRow)
        .where(
            JobRow.id == job_id,
            JobRow.celery_id == celery_id,
            JobRow.state.in_(ACTIVE_STATES),
            or_(
                JobRow.lease_owner.is_(None),
                JobRow.lease_expires_at < now,
                JobRow.lease_owner.startswith(f"{worker}#", autoescape=True),
            ),
        )
        .values(
            state=RUNNING,
            lease_owner=owner,
            host=host,
            device=device,
            lease_expires_at=now + dt.timedelta(seconds=lease_s),
            attempts=JobRow.attempts + 1,
            updated_at=now,
            started_at=func.coalesce(JobRow.started_at, now),
        )
        .execution_options(synchronize_session=False)
    )


def mirror_claim_on_run(
    s: Session, row: JobRow, owner: str, host: str, device: str, now: dt.datetime
) -> int | None:
    """A claimed train job's run takes its state, host, device and lease; returns the step
    to resume from."""
    run = s.get(RunRow, row.run_id)
    assert run is not None
    run.state, run.host, run.device = RUNNING, host, device
    run.lease_owner, run.lease_expires_at = owner, row.lease_expires_at
    run.started_at = run.started_at or now
    run.updated_at = now
    return run.checkpoint_step

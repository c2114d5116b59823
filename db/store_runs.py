"""Runs: create, read (with visibility), tag, annotate, cancel, delete."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from db import convert
from db.access import SYSTEM, Viewer, check_edit, viewable_run
from db.entities import (
    ACTIVE_STATES,
    CANCELLED,
    DONE,
    FINAL_STATES,
    QUEUED,
    VISIBILITIES,
    Job,
    Run,
)
from db.errors import Conflict, InvalidInput, NotFound
from db.models import ArtifactRow, JobRow, RunRow, RunTagRow, UploadRow, UserRow
from db.session import utcnow
from db.store_run_lists import RunListsMixin

_TAG = re.compile(r"^[\w.:+-][\w .:+-]{0,63}$")
DEVICE_REQUESTS = ("auto", "cpu", "cuda", "mps")


def new_id() -> str:
    """A short random id (12 hex digits) for runs and jobs."""
    return secrets.token_hex(6)


def queued_job_row(
    kind: str, run_id: str, owner_id: int, params: dict[str, Any], queue: str, now: Any
) -> JobRow:
    """A new QUEUED job row with a fresh id and Celery message id, not yet added."""
    return JobRow(
        id=new_id(),
        kind=kind,
        run_id=run_id,
        owner_id=owner_id,
        state=QUEUED,
        params=params,
        queue=queue,
        progress=0.0,
        message="",
        celery_id=secrets.token_hex(16),
        attempts=0,
        cancel_requested=False,
        created_at=now,
        updated_at=now,
    )


def queue_for(device_request: str) -> str:
    """The Celery queue for a device request: `cpu` for cpu, `gpu` otherwise."""
    return "cpu" if device_request == "cpu" else "gpu"


def clean_tags(tags: Iterable[str]) -> list[str]:
    out = []
    for tag in tags:
        tag = tag.strip()
        if not _TAG.match(tag):
            raise InvalidInput(
                f"tag {tag!r} is not allowed: 1-64 letters, digits, spaces or . : + - _"
            )
        if tag not in out:
            out.append(tag)
    return sorted(out)


class RunsMixin(RunListsMixin):
    def _run(self, session: Session, row: RunRow) -> Run:
        owner = session.get(UserRow, row.owner_id)
        return convert.run(row, owner.username if owner else "?")

    def create_run(
        self,
        config: dict[str, Any],
        *,
        owner_id: int,
        name: str | None = None,
        preset: str | None = None,
        visibility: str = "private",
        tags: Sequence[str] = (),
        notes: str = "",
        seed: int | None = None,
        device_request: str = "auto",
        total_steps: int = 0,
        parent_id: str | None = None,
    ) -> tuple[Run, Job]:
        """A new QUEUED run and its train job, in one transaction (enqueue after this returns)."""
        if visibility not in VISIBILITIES:
            raise InvalidInput(f"visibility must be one of {VISIBILITIES}, not {visibility!r}")
        if device_request not in DEVICE_REQUESTS:
            raise InvalidInput(f"device must be one of {DEVICE_REQUESTS}, not {device_request!r}")
        now = utcnow()
        run_id = new_id()
        with self._scope(write=True) as s:
            if s.get(UserRow, owner_id) is None:
                raise NotFound(f"no user with id {owner_id}")
            row = RunRow(
                id=run_id,
                name=(name or config.get("name") or run_id)[:200],
                owner_id=owner_id,
                preset=preset,
                config=config,
                state=QUEUED,
                visibility=visibility,
                notes=notes,
                seed=seed,
                device_request=device_request,
                step=0,
                total_steps=total_steps,
                cancel_requested=False,
                parent_id=parent_id,
                created_at=now,
                updated_at=now,
            )
            row.tags = [RunTagRow(tag=t) for t in clean_tags(tags)]
            s.add(row)
            s.flush()  # the run first: jobs refer to it
            job = queued_job_row("train", run_id, owner_id, {}, queue_for(device_request), now)
            s.add(job)
            s.flush()
            return self._run(s, row), convert.job(job)

    def get_run(self, run_id: str, *, viewer: Viewer) -> Run:
        with self._scope() as s:
            return self._run(s, viewable_run(s, run_id, viewer))

    def set_tags(self, run_id: str, tags: Sequence[str], *, viewer: Viewer) -> Run:
        cleaned = clean_tags(tags)
        with self._scope(write=True) as s:
            row = check_edit(s.get(RunRow, run_id), viewer, run_id)
            row.tags = [RunTagRow(tag=t) for t in cleaned]
            row.updated_at = utcnow()
            s.flush()
            return self._run(s, row)

    def add_tag(self, run_id: str, tag: str, *, viewer: Viewer) -> Run:
        run = self.get_run(run_id, viewer=viewer)
        return self.set_tags(run_id, [*run.tags, tag], viewer=viewer)

    def remove_tag(self, run_id: str, tag: str, *, viewer: Viewer) -> Run:
        run = self.get_run(run_id, viewer=viewer)
        return self.set_tags(run_id, [t for t in run.tags if t != tag], viewer=viewer)

    def set_notes(self, run_id: str, notes: str, *, viewer: Viewer) -> Run:
        if len(notes) > 100_000:
            raise InvalidInput("notes are limited to 100,000 characters")
        return self._edit(run_id, viewer, notes=notes)

    def set_visibility(self, run_id: str, visibility: str, *, viewer: Viewer) -> Run:
        if visibility not in VISIBILITIES:
            raise InvalidInput(f"visibility must be one of {VISIBILITIES}, not {visibility!r}")
        return self._edit(run_id, viewer, visibility=visibility)

    def rename_run(self, run_id: str, name: str, *, viewer: Viewer) -> Run:
        if not name.strip() or len(name) > 200:
            raise InvalidInput("a run name must have 1 to 200 characters")
        return self._edit(run_id, viewer, name=name.strip())

    def _edit(self, run_id: str, viewer: Viewer, **values: Any) -> Run:
        with self._scope(write=True) as s:
            row = check_edit(s.get(RunRow, run_id), viewer, run_id)
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            s.flush()
            return self._run(s, row)

    def request_cancel(self, run_id: str, *, viewer: Viewer = SYSTEM) -> Run:
        """Ask a run (and its active jobs) to stop. Not yet started: CANCELLED at once."""
        now = utcnow()
        with self._scope(write=True) as s:
            row = check_edit(s.get(RunRow, run_id), viewer, run_id)
            if row.state in FINAL_STATES:
                return self._run(s, row)
            row.cancel_requested = True
            row.updated_at = now
            jobs = s.scalars(
                select(JobRow).where(JobRow.run_id == run_id, JobRow.state.in_(ACTIVE_STATES))
            )
            for job in jobs:
                job.cancel_requested = True
                job.updated_at = now
                if job.state == QUEUED and job.lease_owner is None:
                    job.state, job.finished_at = CANCELLED, now
            if row.state == QUEUED:
                row.state, row.finished_at = CANCELLED, now
            s.flush()
            return self._run(s, row)

    def extend_run(self, run_id: str, extra_steps: int, *, viewer: Viewer) -> tuple[Run, Job]:
        """Continue a finished or cancelled run for `extra_steps` more training steps from its
        checkpoint: train.steps grows, the run is QUEUED again with a new train job (enqueue
        it after this returns). Owner or admin only; the run must hold a checkpoint."""
        if isinstance(extra_steps, bool) or not isinstance(extra_steps, int):
            raise InvalidInput(f"extra steps must be a whole number, not {extra_steps!r}")
        if not 1 <= extra_steps <= 10_000_000:
            raise InvalidInput(f"extra steps must be in 1..10,000,000, not {extra_steps}")
        now = utcnow()
        with self._scope(write=True) as s:
            row = check_edit(s.get(RunRow, run_id), viewer, run_id)
            if row.state not in (DONE, CANCELLED):
                raise Conflict(
                    f"run {run_id!r} is {row.state.lower()}: only a done or cancelled run "
                    "can be continued"
                )
            ckpt = s.scalars(
                select(ArtifactRow).where(
                    ArtifactRow.run_id == run_id, ArtifactRow.kind == "checkpoint"
                )
            ).first()
            if ckpt is None:
                raise Conflict(f"run {run_id!r} has no checkpoint to continue from")
            config = dict(row.config)
            train = dict(config.get("train") or {})
            steps = int(train.get("steps") or row.total_steps or 0)
            start = max(int(ckpt.step or 0), min(row.step, steps))
            # the lr schedule keeps its length (diffusion.config.TrainConfig.lr_steps): the lr
            # goes on from where the run stopped instead of restarting over the new total
            train["lr_steps"] = int(train.get("lr_steps") or steps)
            train["steps"] = start + extra_steps
            config["train"] = train
            row.config = config
            row.total_steps = train["steps"]
            row.state, row.finished_at, row.error = QUEUED, None, None
            row.cancel_requested = False
            row.updated_at = now
            job = queued_job_row(
                "train", run_id, row.owner_id, {}, queue_for(row.device_request), now
            )
            s.add(job)
            s.flush()
            return self._run(s, row), convert.job(job)

    def delete_run(self, run_id: str, *, viewer: Viewer) -> list[str]:
        """Delete a finished run with its tags, metrics, jobs and artifact rows.

        Returns the sha256 of blobs no longer referenced (already removed from the artifact
        store when the store has one). An active run must be cancelled first.
        """
        with self._scope(write=True) as s:
            row = check_edit(s.get(RunRow, run_id), viewer, run_id)
            if row.state in ACTIVE_STATES:
                raise Conflict(f"run {run_id} is {row.state}; cancel it before deleting it")
            shas: set[str] = set()
            for sha, thumb in s.execute(
                select(ArtifactRow.sha256, ArtifactRow.thumb_sha256).where(
                    ArtifactRow.run_id == run_id
                )
            ):
                shas.add(sha)
                if thumb:
                    shas.add(thumb)
            s.execute(delete(RunRow).where(RunRow.id == run_id))
            s.flush()
            orphans = [sha for sha in shas if not referenced(s, sha)]
        self._delete_blobs(orphans)
        return orphans

    def _delete_blobs(self, shas: Iterable[str]) -> None:
        artifacts = getattr(self, "artifacts", None)
        if artifacts is not None:
            for sha in shas:
                artifacts.delete(sha)


def referenced(s: Session, sha: str) -> bool:
    """Whether any artifact or upload row (or thumbnail) still uses these bytes."""
    for col in (
        ArtifactRow.sha256,
        ArtifactRow.thumb_sha256,
        UploadRow.sha256,
        UploadRow.thumb_sha256,
    ):
        if s.scalar(select(func.count()).where(col == sha)):
            return True
    return False

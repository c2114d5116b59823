"""Worker heartbeats: which workers are online, on which host and device, doing what."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select

from db import convert
from db.entities import WorkerInfo
from db.models import WorkerRow
from db.session import StoreBase, utcnow

KEEP: Any = object()  # worker_heartbeat: leave the current job as it is


class WorkersMixin(StoreBase):
    def worker_heartbeat(
        self,
        name: str,
        *,
        host: str,
        device: str,
        queues: Sequence[str],
        pid: int,
        current_job_id: str | None | object = KEEP,
        started: bool = False,
        device_info: dict[str, Any] | None = None,
    ) -> None:
        """Record that worker `name` is alive (upsert). The current job is kept unless given
        (the periodic heartbeat must not say "idle" while a job runs); `device_info`
        (name, memory in use and total) replaces the last one when given."""
        now = utcnow()
        with self._scope(write=True) as s:
            row = s.get(WorkerRow, name)
            if row is None:
                row = WorkerRow(name=name, started_at=now)
                s.add(row)
            if started:
                row.started_at = now
            row.host, row.device, row.queues, row.pid = host, device, ",".join(queues), pid
            row.last_seen = now
            if current_job_id is not KEEP or started:
                row.current_job_id = None if current_job_id is KEEP else current_job_id
            if device_info is not None:
                row.device_info = device_info

    def set_worker_job(self, name: str, job_id: str | None) -> None:
        with self._scope(write=True) as s:
            row = s.get(WorkerRow, name)
            if row is not None:
                row.current_job_id, row.last_seen = job_id, utcnow()

    def worker_gone(self, name: str) -> None:
        with self._scope(write=True) as s:
            s.execute(delete(WorkerRow).where(WorkerRow.name == name))

    def workers(self, *, online_within_s: float | None = 60.0) -> list[WorkerInfo]:
        """Workers seen within `online_within_s` seconds (all known ones when None)."""
        q = select(WorkerRow).order_by(WorkerRow.name)
        if online_within_s is not None:
            q = q.where(WorkerRow.last_seen >= utcnow() - dt.timedelta(seconds=online_within_s))
        with self._scope() as s:
            return [convert.worker(r) for r in s.scalars(q)]

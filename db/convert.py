"""ORM row -> entity conversions, and the float handling for metrics (NaN and infinities)."""

from __future__ import annotations

import json
import math

from db import entities as e
from db import models as m

_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def encode_float(value: float | None) -> tuple[float | None, str | None]:
    """(value, special) for storage: non-finite numbers become NULL plus a tag."""
    if value is None:
        return None, None
    value = float(value)
    if math.isnan(value):
        return None, "nan"
    if math.isinf(value):
        return None, "inf" if value > 0 else "-inf"
    return value, None


def decode_float(value: float | None, special: str | None) -> float | None:
    return _SPECIAL[special] if special else value


def encode_vector(values: object) -> list[float | None]:
    """A JSON-safe list: NaN and infinities become null (JSON has no such numbers)."""
    out: list[float | None] = []
    for v in values:  # type: ignore[attr-defined]
        f = float(v)
        out.append(f if math.isfinite(f) else None)
    return out


def user(row: m.UserRow) -> e.User:
    return e.User(row.id, row.username, row.is_admin, row.is_local, row.created_at)


def invite(row: m.InviteRow) -> e.Invite:
    return e.Invite(
        row.token,
        row.created_by,
        row.created_at,
        row.expires_at,
        row.is_admin,
        row.used_by,
        row.used_at,
    )


def run(row: m.RunRow, owner: str) -> e.Run:
    return e.Run(
        id=row.id,
        name=row.name,
        owner_id=row.owner_id,
        owner=owner,
        preset=row.preset,
        config=dict(row.config),
        state=row.state,
        visibility=row.visibility,
        tags=tuple(t.tag for t in row.tags),
        notes=row.notes,
        seed=row.seed,
        device_request=row.device_request,
        host=row.host,
        device=row.device,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        step=row.step,
        total_steps=row.total_steps,
        checkpoint_step=row.checkpoint_step,
        final_bound_bits=row.final_bound_bits,
        final_bound_stderr=row.final_bound_stderr,
        error=row.error,
        cancel_requested=row.cancel_requested,
        parent_id=row.parent_id,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        updated_at=row.updated_at,
    )


def job(row: m.JobRow) -> e.Job:
    return e.Job(
        id=row.id,
        kind=row.kind,
        run_id=row.run_id,
        owner_id=row.owner_id,
        state=row.state,
        params=dict(row.params),
        queue=row.queue,
        progress=row.progress,
        message=row.message,
        error=row.error,
        celery_id=row.celery_id,
        attempts=row.attempts,
        host=row.host,
        device=row.device,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        cancel_requested=row.cancel_requested,
        created_at=row.created_at,
        enqueued_at=row.enqueued_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        updated_at=row.updated_at,
    )


def metric(row: m.MetricRow) -> e.MetricPoint:
    return metric_tuple(row.name, row.step, row.value, row.special, row.wall_time, row.vector)


def metric_tuple(
    name: str,
    step: int,
    value: float | None,
    special: str | None,
    wall_time: float,
    vector: list | str | None,
) -> e.MetricPoint:
    """A MetricPoint from the columns of a metrics row (store_metrics.POINT_COLUMNS); the
    vector may come as its JSON text (SQLite: "null" for a scalar point) or decoded."""
    if isinstance(vector, str):
        vector = None if vector == "null" else json.loads(vector)
    vec = None
    if vector is not None:
        vec = tuple(math.nan if v is None else float(v) for v in vector)
    return e.MetricPoint(name, step, decode_float(value, special), wall_time, vec)


def artifact(row: m.ArtifactRow) -> e.Artifact:
    return e.Artifact(
        id=row.id,
        run_id=row.run_id,
        job_id=row.job_id,
        kind=row.kind,
        step=row.step,
        key=row.key,
        media_type=row.media_type,
        size=row.size,
        sha256=row.sha256,
        location=row.location,
        thumb_sha256=row.thumb_sha256,
        width=row.width,
        height=row.height,
        created_at=row.created_at,
    )


def upload(row: m.UploadRow) -> e.Upload:
    return e.Upload(
        id=row.id,
        owner_id=row.owner_id,
        sha256=row.sha256,
        original_name=row.original_name,
        media_type=row.media_type,
        size=row.size,
        width=row.width,
        height=row.height,
        thumb_sha256=row.thumb_sha256,
        created_at=row.created_at,
    )


def share_link(row: m.ShareLinkRow) -> e.ShareLink:
    return e.ShareLink(
        row.token, row.created_by, tuple(row.run_ids), row.title, row.created_at, row.expires_at
    )


def worker(row: m.WorkerRow) -> e.WorkerInfo:
    return e.WorkerInfo(
        row.name,
        row.host,
        row.device,
        tuple(q for q in row.queues.split(",") if q),
        row.pid,
        row.started_at,
        row.last_seen,
        row.current_job_id,
        row.device_info,
    )

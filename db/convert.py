"""ORM row -> entity conversions, and the float handling for metrics (NaN and infinities)."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import fields
from typing import TypeVar

from sqlalchemy import Row

from db import entities as e
from db import models as m

T = TypeVar("T")

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


def _copy(kind: type[T], row: object, **given: object) -> T:
    """A `kind` entity whose fields come from the row's same-named columns, except those in
    `given` (the ones a plain copy would get wrong: JSON dicts, joined tags, split lists)."""
    names = _copied(kind, frozenset(given))
    return kind(**{n: getattr(row, n) for n in names}, **given)


@functools.cache
def _copied(kind: type, given: frozenset[str]) -> tuple[str, ...]:
    """The fields of `kind` a copy reads from the row (worked out once per kind: a page of
    runs converts hundreds)."""
    return tuple(f.name for f in fields(kind) if f.name not in given)


def user(row: m.UserRow) -> e.User:
    return _copy(e.User, row)


def invite(row: m.InviteRow) -> e.Invite:
    return _copy(e.Invite, row)


def run(row: m.RunRow | Row, owner: str, tags: Sequence[str] | None = None) -> e.Run:
    """A Run from its ORM row, or from a plain row of the runs table's columns (then `tags`
    are given: a plain row has no relationship to load them from)."""
    tags = tuple(t.tag for t in row.tags) if tags is None else tuple(tags)
    return _copy(e.Run, row, owner=owner, config=dict(row.config), tags=tags)


def job(row: m.JobRow) -> e.Job:
    return _copy(e.Job, row, params=dict(row.params))


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
    return _copy(e.Artifact, row)


def upload(row: m.UploadRow) -> e.Upload:
    return _copy(e.Upload, row)


def share_link(row: m.ShareLinkRow) -> e.ShareLink:
    return _copy(e.ShareLink, row, run_ids=tuple(row.run_ids))


def worker(row: m.WorkerRow) -> e.WorkerInfo:
    return _copy(e.WorkerInfo, row, queues=tuple(q for q in row.queues.split(",") if q))

"""Append-only metric series: (run, name, step) -> value or vector, with wall time.

Writes are batched and fenced by the writer's lease; NaN and infinities are kept (as NULL
plus a tag for scalars, as null for vector entries). Readers poll by `after_step`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import Text, delete, func, insert, select, type_coerce

from db import convert
from db.access import Viewer, viewable_run, visible_clause
from db.entities import MetricPoint
from db.errors import InvalidInput
from db.models import MetricRow, RunRow
from db.session import StoreBase
from db.store_jobs import Lease, check_lease

# Plain columns, not ORM objects, and the vector as its raw JSON text (decoded only where it
# holds a vector, convert.metric_tuple): a run of 50,000 logged steps loads several times faster.
POINT_COLUMNS = (
    MetricRow.name,
    MetricRow.step,
    MetricRow.value,
    MetricRow.special,
    MetricRow.wall_time,
    type_coerce(MetricRow.vector, Text),
)


class MetricsMixin(StoreBase):
    def append_metrics(
        self, run_id: str, points: Sequence[MetricPoint], *, lease: Lease | None = None
    ) -> int:
        """Append points in one transaction; returns how many. A (name, step) seen twice is
        an error (the unique constraint), so a resumed run must first `truncate_metrics`."""
        if not points:
            return 0
        rows = []
        for p in points:
            if not p.name or len(p.name) > 64:
                raise InvalidInput(f"metric name must have 1-64 characters: {p.name!r}")
            value, special = convert.encode_float(p.value)
            rows.append(
                {
                    "run_id": run_id,
                    "name": p.name,
                    "step": int(p.step),
                    "value": value,
                    "special": special,
                    "wall_time": p.wall_time or time.time(),
                    "vector": None if p.vector is None else convert.encode_vector(p.vector),
                }
            )
        with self._scope(write=True) as s:
            if lease is not None:
                check_lease(s, lease)
            s.execute(insert(MetricRow), rows)
        return len(rows)

    def truncate_metrics(self, run_id: str, after_step: int, *, lease: Lease | None = None) -> int:
        """Delete points with step > `after_step` (a run resuming from that checkpoint)."""
        with self._scope(write=True) as s:
            if lease is not None:
                check_lease(s, lease)
            result = s.execute(
                delete(MetricRow).where(MetricRow.run_id == run_id, MetricRow.step > after_step)
            )
            return int(result.rowcount or 0)

    def metric_series(
        self,
        run_id: str,
        name: str,
        *,
        viewer: Viewer,
        after_step: int | None = None,
        limit: int | None = None,
    ) -> list[MetricPoint]:
        """Points of one series in step order (only those after `after_step` if given)."""
        q = select(*POINT_COLUMNS).where(MetricRow.run_id == run_id, MetricRow.name == name)
        if after_step is not None:
            q = q.where(MetricRow.step > after_step)
        q = q.order_by(MetricRow.step)
        if limit is not None:
            q = q.limit(limit)
        with self._scope() as s:
            viewable_run(s, run_id, viewer)
            return [convert.metric_tuple(*r) for r in s.execute(q)]

    def metrics(
        self,
        run_id: str,
        *,
        viewer: Viewer,
        names: Sequence[str] | None = None,
        after_step: int | None = None,
    ) -> dict[str, list[MetricPoint]]:
        """Several series at once: name -> points in step order."""
        q = select(*POINT_COLUMNS).where(MetricRow.run_id == run_id)
        if names is not None:
            q = q.where(MetricRow.name.in_(list(names)))
        if after_step is not None:
            q = q.where(MetricRow.step > after_step)
        q = q.order_by(MetricRow.name, MetricRow.step)
        out: dict[str, list[MetricPoint]] = {}
        with self._scope() as s:
            viewable_run(s, run_id, viewer)
            for row in s.execute(q):
                out.setdefault(row[0], []).append(convert.metric_tuple(*row))
        return out

    def metric_names(self, run_id: str, *, viewer: Viewer) -> list[str]:
        with self._scope() as s:
            viewable_run(s, run_id, viewer)
            q = select(MetricRow.name).where(MetricRow.run_id == run_id).distinct()
            return sorted(s.scalars(q))

    def latest_metrics(self, run_id: str, *, viewer: Viewer) -> dict[str, MetricPoint]:
        """The last point of every series of a run."""
        last = (
            select(MetricRow.name, func.max(MetricRow.step).label("step"))
            .where(MetricRow.run_id == run_id)
            .group_by(MetricRow.name)
            .subquery()
        )
        q = (
            select(MetricRow)
            .join(last, (MetricRow.name == last.c.name) & (MetricRow.step == last.c.step))
            .where(MetricRow.run_id == run_id)
        )
        with self._scope() as s:
            viewable_run(s, run_id, viewer)
            return {row.name: convert.metric(row) for row in s.scalars(q)}

    def latest_values(
        self, run_ids: Sequence[str], names: Sequence[str], *, viewer: Viewer
    ) -> dict[str, dict[str, float | None]]:
        """{run id: {name: value at its latest step}} for many runs at once (one query; runs
        `viewer` may not see are left out). For the runs table's metric columns."""
        if not run_ids or not names:
            return {}
        latest = (
            select(MetricRow.run_id, MetricRow.name, func.max(MetricRow.step).label("step"))
            .where(MetricRow.run_id.in_(list(run_ids)), MetricRow.name.in_(list(names)))
            .group_by(MetricRow.run_id, MetricRow.name)
            .subquery()
        )
        q = (
            select(MetricRow)
            .join(
                latest,
                (MetricRow.run_id == latest.c.run_id)
                & (MetricRow.name == latest.c.name)
                & (MetricRow.step == latest.c.step),
            )
            .join(RunRow, RunRow.id == MetricRow.run_id)
            .where(visible_clause(viewer))
        )
        out: dict[str, dict[str, float | None]] = {}
        with self._scope() as s:
            for row in s.scalars(q):
                out.setdefault(row.run_id, {})[row.name] = convert.metric(row).value
        return out

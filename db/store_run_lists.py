"""Lists of runs for pages and the CLI: filtered, counted and summarised in SQL.

Every query here carries `visible_clause(viewer)` in its WHERE, so the rights check is made
by the database for each row, whatever the filters: a member never gets another member's
private run, nor its name, tags or data set through a count or a list of choices.

Rows are read as plain columns (no ORM objects), and the tags of a page of runs come in one
more query, so a page of 500 runs costs two queries whatever its size.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.orm import Session

from db import convert
from db.access import Viewer, visible_clause
from db.entities import ACTIVE_STATES, QUEUED, STATES, Run
from db.errors import InvalidInput
from db.models import ArtifactRow, RunRow, RunTagRow, UserRow
from db.session import StoreBase

NO_DATASET = "?"  # the data set of a run whose config names none
_IN_CHUNK = 900  # ids per IN (...) list: under SQLite's oldest limit of 999 parameters


def dataset_of() -> ColumnElement[str | None]:
    """The run's `data.name` from its stored config, read by the database (JSON path)."""
    return RunRow.config[("data", "name")].as_string()


@dataclass(frozen=True)
class RunFilter:
    """What a list of runs is narrowed to; empty fields narrow nothing.

    `search` matches part of the name (any case) or of the id; `tags` any of them; `datasets`
    any of them (NO_DATASET: runs whose config names no data set)."""

    search: str = ""
    states: Sequence[str] = ()
    tags: Sequence[str] = ()
    datasets: Sequence[str] = ()
    owner_id: int | None = None
    ids: Sequence[str] | None = None
    with_kinds: Sequence[str] = ()  # only runs holding an artifact of one of these kinds

    def clauses(self) -> list[ColumnElement[bool]]:
        for state in self.states:
            if state not in STATES:
                raise InvalidInput(f"state must be one of {STATES}, not {state!r}")
        out: list[ColumnElement[bool]] = []
        if self.states:
            out.append(RunRow.state.in_(list(self.states)))
        if self.owner_id is not None:
            out.append(RunRow.owner_id == self.owner_id)
        if self.ids is not None:
            out.append(RunRow.id.in_(list(self.ids)))
        if self.with_kinds:
            holding = select(ArtifactRow.run_id).where(ArtifactRow.kind.in_(list(self.with_kinds)))
            out.append(RunRow.id.in_(holding))
        if self.tags:
            tagged = select(RunTagRow.run_id).where(RunTagRow.tag.in_(list(self.tags)))
            out.append(RunRow.id.in_(tagged))
        if self.datasets:
            names = [d for d in self.datasets if d != NO_DATASET]
            either = [dataset_of().in_(names)] if names else []
            if NO_DATASET in self.datasets:
                either.append(dataset_of().is_(None))
            out.append(or_(*either))
        text = self.search.strip().lower()
        if text:
            out.append(
                or_(
                    func.lower(RunRow.name).contains(text, autoescape=True),
                    RunRow.id.contains(text, autoescape=True),
                )
            )
        return out


@dataclass(frozen=True)
class RunFacets:
    """What the runs a viewer may see hold, for a page's filters (no run is loaded)."""

    total: int
    active: int  # QUEUED or RUNNING
    newest: dt.datetime | None
    datasets: list[str]
    tags: list[str]


class RunListsMixin(StoreBase):
    def _visible(self, viewer: Viewer, where: RunFilter | None) -> list[ColumnElement[bool]]:
        return [visible_clause(viewer), *(where.clauses() if where else ())]

    def list_runs(
        self,
        *,
        viewer: Viewer,
        states: Sequence[str] | None = None,
        tag: str | None = None,
        owner_id: int | None = None,
        search: str | None = None,
        ids: Sequence[str] | None = None,
        limit: int = 500,
        offset: int = 0,
        where: RunFilter | None = None,
    ) -> list[Run]:
        """Runs `viewer` may see, newest first, filtered (`where`, or the single filters)."""
        if where is None:
            where = RunFilter(
                search=search or "",
                states=states or (),
                tags=[tag] if tag else (),
                owner_id=owner_id,
                ids=ids,
            )
        q: Select = (
            select(RunRow.__table__, UserRow.username)
            .join(UserRow, UserRow.id == RunRow.owner_id)
            .where(*self._visible(viewer, where))
            .order_by(RunRow.created_at.desc(), RunRow.id)
            .limit(limit)
            .offset(offset)
        )
        with self._scope() as s:
            rows = s.connection().execute(q).all()  # plain rows: no ORM loading on the way
            tags = _tags_of(s, [r.id for r in rows])
        return [convert.run(r, r.username, tags.get(r.id, ())) for r in rows]

    def count_runs(self, *, viewer: Viewer, where: RunFilter | None = None) -> int:
        """How many runs `viewer` may see match `where`."""
        q = select(func.count()).select_from(RunRow).where(*self._visible(viewer, where))
        with self._scope() as s:
            return int(s.scalar(q) or 0)

    def run_facets(self, *, viewer: Viewer) -> RunFacets:
        """Counts, the data sets and the tags of the runs `viewer` may see (three small
        queries, no run loaded)."""
        seen = visible_clause(viewer)
        counts = select(
            func.count(),
            func.coalesce(func.sum(case((RunRow.state.in_(ACTIVE_STATES), 1), else_=0)), 0),
            func.max(RunRow.created_at),
        ).where(seen)
        datasets = select(dataset_of()).where(seen).distinct()
        with self._scope() as s:
            total, active, newest = s.execute(counts).one()
            names = {d if d is not None else NO_DATASET for d in s.scalars(datasets)}
            tags = list(s.scalars(_tags_query(seen)))
        return RunFacets(int(total), int(active), newest, sorted(names), tags)

    def queue_order(self, *, viewer: Viewer) -> list[tuple[str, str]]:
        """(run id, device request) of the QUEUED runs `viewer` may see, oldest first."""
        q = (
            select(RunRow.id, RunRow.device_request)
            .where(visible_clause(viewer), RunRow.state == QUEUED)
            .order_by(RunRow.created_at, RunRow.id)
        )
        with self._scope() as s:
            return [(run_id, device) for run_id, device in s.execute(q)]

    def all_tags(self, *, viewer: Viewer) -> list[str]:
        with self._scope() as s:
            return list(s.scalars(_tags_query(visible_clause(viewer))))


def _tags_query(seen: ColumnElement[bool]) -> Select:
    return (
        select(RunTagRow.tag)
        .distinct()
        .join(RunRow, RunRow.id == RunTagRow.run_id)
        .where(seen)
        .order_by(RunTagRow.tag)
    )


def _tags_of(s: Session, run_ids: list[str]) -> dict[str, list[str]]:
    """run id -> its tags in order, for these runs (one query per 900 ids)."""
    out: dict[str, list[str]] = {}
    for i in range(0, len(run_ids), _IN_CHUNK):
        chunk = run_ids[i : i + _IN_CHUNK]
        q = (
            select(RunTagRow.run_id, RunTagRow.tag)
            .where(RunTagRow.run_id.in_(chunk))
            .order_by(RunTagRow.run_id, RunTagRow.tag)
        )
        for run_id, tag in s.execute(q):
            out.setdefault(run_id, []).append(tag)
    return out

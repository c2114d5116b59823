"""Who may see and change what. Every read method of the store takes a `viewer`.

A viewer is a `User`, `SYSTEM` (the worker, the CLI, tests: sees everything), or a
`LinkViewer`: a signed-in user holding a share link, who also sees (read only) the runs the
link names, even private ones (`Store.share_viewer` makes one from a valid token).
A user sees their own runs and the team-visible ones; a team admin sees every run (the Team
page says a private run is seen by "only you and admins"); only the owner or an admin changes
a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeVar

from sqlalchemy import ColumnElement, or_, true
from sqlalchemy.orm import Session

from db.entities import User
from db.errors import NotFound, PermissionDenied
from db.models import RunRow

R = TypeVar("R")


class _System:
    """The unrestricted viewer (worker, CLI, tests). Never hand it to a web page."""

    is_admin: Final = True
    id: Final = None

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM: Final = _System()


@dataclass(frozen=True)
class LinkViewer:
    """A signed-in user holding a valid share link: read-only access to its runs.

    Sees what `user` sees plus `run_ids`; changes nothing through the link (every edit
    check refuses it, whoever the user is: the page behind a link is read-only)."""

    user: User
    run_ids: frozenset[str]
    token: str

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def is_admin(self) -> bool:
        return False

    @property
    def is_local(self) -> bool:
        return self.user.is_local


Viewer = User | _System | LinkViewer


def _team_admin(viewer: User | LinkViewer) -> bool:
    """A team admin (the implicit local user of one-machine mode is not one for viewing)."""
    return bool(viewer.is_admin and not viewer.is_local)


def visible_clause(viewer: Viewer) -> ColumnElement[bool]:
    """A WHERE clause limiting runs to those `viewer` may see."""
    if isinstance(viewer, _System) or _team_admin(viewer):
        return true()
    own = or_(RunRow.owner_id == viewer.id, RunRow.visibility == "team")
    if isinstance(viewer, LinkViewer):
        return or_(own, RunRow.id.in_(sorted(viewer.run_ids)))
    return own


def may_view(viewer: Viewer, owner_id: int, visibility: str, run_id: str | None = None) -> bool:
    """Whether `viewer` may see a run of this owner and visibility (and id, for a link)."""
    return (
        isinstance(viewer, _System)
        or _team_admin(viewer)
        or owner_id == viewer.id
        or visibility == "team"
        or (isinstance(viewer, LinkViewer) and run_id in viewer.run_ids)
    )


def check_view(row: RunRow | None, viewer: Viewer, run_id: str) -> RunRow:
    """The row if `viewer` may see it; otherwise NotFound (no hint that it exists)."""
    if row is None or not may_view(viewer, row.owner_id, row.visibility, row.id):
        raise NotFound(f"no run {run_id!r}")
    return row


def viewable_run(s: Session, run_id: str, viewer: Viewer) -> RunRow:
    """The row of run `run_id` if `viewer` may see it; otherwise NotFound."""
    return check_view(s.get(RunRow, run_id), viewer, run_id)


def viewable_child(s: Session, kind: type[R], key: object, viewer: Viewer, what: str) -> R:
    """The `kind` row (an artifact, a job: anything with a run_id) under primary key `key` if
    `viewer` may see its run; otherwise NotFound naming `what`."""
    row = s.get(kind, key)
    if row is None:
        raise NotFound(f"no {what}")
    viewable_run(s, row.run_id, viewer)  # type: ignore[attr-defined]
    return row


def check_edit(row: RunRow | None, viewer: Viewer, run_id: str) -> RunRow:
    """The row if `viewer` may change it (owner or admin; never through a share link)."""
    row = check_view(row, viewer, run_id)
    if isinstance(viewer, LinkViewer):
        raise PermissionDenied(f"a share link gives read-only access to run {run_id!r}")
    if isinstance(viewer, _System) or viewer.is_admin or row.owner_id == viewer.id:
        return row
    raise PermissionDenied(f"only the owner of run {run_id!r} or an admin may change it")


def may_edit(run_owner_id: int, viewer: Viewer) -> bool:
    """Whether `viewer` may change a run owned by `run_owner_id` (to show or hide buttons)."""
    if isinstance(viewer, LinkViewer):
        return False
    return isinstance(viewer, _System) or viewer.is_admin or run_owner_id == viewer.id

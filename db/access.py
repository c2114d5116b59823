"""Who may see and change what. Every read method of the store takes a `viewer`.

A viewer is a `User` or `SYSTEM` (the worker, the CLI, tests: sees everything).
A user sees their own runs and the team-visible ones; a team admin sees every run (the Team
page says a private run is seen by "only you and admins"); only the owner or an admin changes
a run.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import ColumnElement, or_, true

from db.entities import User
from db.errors import NotFound, PermissionDenied
from db.models import RunRow


class _System:
    """The unrestricted viewer (worker, CLI, tests). Never hand it to a web page."""

    is_admin: Final = True
    id: Final = None

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM: Final = _System()
Viewer = User | _System


def _team_admin(viewer: User) -> bool:
    """A team admin (the implicit local user of one-machine mode is not one for viewing)."""
    return bool(viewer.is_admin and not viewer.is_local)


def visible_clause(viewer: Viewer) -> ColumnElement[bool]:
    """A WHERE clause limiting runs to those `viewer` may see."""
    if isinstance(viewer, _System) or _team_admin(viewer):
        return true()
    return or_(RunRow.owner_id == viewer.id, RunRow.visibility == "team")


def may_view(viewer: Viewer, owner_id: int, visibility: str) -> bool:
    """Whether `viewer` may see a run of this owner and visibility."""
    return (
        isinstance(viewer, _System)
        or _team_admin(viewer)
        or owner_id == viewer.id
        or visibility == "team"
    )


def check_view(row: RunRow | None, viewer: Viewer, run_id: str) -> RunRow:
    """The row if `viewer` may see it; otherwise NotFound (no hint that it exists)."""
    if row is None or not (may_view(viewer, row.owner_id, row.visibility)):
        raise NotFound(f"no run {run_id!r}")
    return row


def check_edit(row: RunRow | None, viewer: Viewer, run_id: str) -> RunRow:
    """The row if `viewer` may change it (owner or admin)."""
    row = check_view(row, viewer, run_id)
    if isinstance(viewer, _System) or viewer.is_admin or row.owner_id == viewer.id:
        return row
    raise PermissionDenied(f"only the owner of run {run_id!r} or an admin may change it")

"""Users (argon2 password hashes), invites, the implicit local user, and share links."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Sequence

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from db import convert
from db.access import LinkViewer, Viewer, viewable_run
from db.entities import Invite, ShareLink, User
from db.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from db.models import InviteRow, RunRow, ShareLinkRow, UserRow
from db.passwords import (  # noqa: F401 (re-exported)
    LOCAL_USERNAME,
    MIN_PASSWORD,
    check_password,
    check_username,
    username_key,
)
from db.session import added, utcnow
from db.store_sessions import SessionsMixin

_hasher = PasswordHasher()


def _user_row(name: str, password_hash: str | None, *, is_admin: bool, is_local: bool) -> UserRow:
    """A new user's row (`name` already checked, or the implicit local user's)."""
    return UserRow(
        username=name,
        username_key=username_key(name),
        password_hash=password_hash,
        is_admin=is_admin,
        is_local=is_local,
        created_at=utcnow(),
    )


class UsersMixin(SessionsMixin):
    def create_user(self, username: str, password: str, *, is_admin: bool = False) -> User:
        """A team user; the password is stored as an argon2id hash.

        The username is NFKC-normalised and unique without regard to case; the password
        follows `db.passwords.check_password` (length, not common, not the username).
        """
        name = check_username(username)
        check_password(password, name)
        password_hash = _hasher.hash(password)  # before the write lock, never inside it
        try:
            with self._scope(write=True) as s:
                row = added(s, _user_row(name, password_hash, is_admin=is_admin, is_local=False))
                return convert.user(row)
        except IntegrityError as exc:
            raise Conflict(f"username {name!r} is taken") from exc

    def local_user(self) -> User:
        """The single implicit user of non-team mode (created on first use; an admin)."""
        with self._scope(write=True) as s:
            row = s.scalars(select(UserRow).where(UserRow.username == LOCAL_USERNAME)).first()
            if row is None:
                row = added(s, _user_row(LOCAL_USERNAME, None, is_admin=True, is_local=True))
            return convert.user(row)

    def authenticate(self, username: str, password: str, *, client: str = "") -> User | None:
        """The user if the password matches, else None (same cost either way).

        Raises TooManyAttempts while the account or the client address is blocked (see
        `db.store_sessions`). The hash is checked outside any transaction, so no write lock
        is held across it.
        """
        self.check_sign_in_allowed(username, client)
        with self._scope() as s:
            row = s.scalars(
                select(UserRow).where(UserRow.username_key == username_key(username))
            ).first()
            stored = row.password_hash if row is not None else None
            active = row is not None and row.removed_at is None
            user = convert.user(row) if row is not None else None
        try:
            _hasher.verify(stored or _DUMMY_HASH, password)
            ok = stored is not None and active
        except (VerificationError, InvalidHashError):
            ok = False
        rehash = _hasher.hash(password) if ok and _hasher.check_needs_rehash(stored) else None
        self.record_sign_in(username, client, ok=ok)
        if not ok or user is None:
            return None
        if rehash is not None:
            with self._scope(write=True) as s:
                s.execute(update(UserRow).where(UserRow.id == user.id).values(password_hash=rehash))
        return user

    def get_user(self, user_id: int) -> User:
        with self._scope() as s:
            row = s.get(UserRow, user_id)
            if row is None:
                raise NotFound(f"no user with id {user_id}")
            return convert.user(row)

    def user_by_name(self, username: str) -> User | None:
        """The user of this name (compared NFKC-normalised, case-folded), or None."""
        with self._scope() as s:
            q = select(UserRow).where(UserRow.username_key == username_key(username))
            row = s.scalars(q).first()
            return convert.user(row) if row else None

    def list_users(self, *, include_removed: bool = False) -> list[User]:
        q = select(UserRow).order_by(UserRow.id)
        if not include_removed:
            q = q.where(UserRow.removed_at.is_(None))
        with self._scope() as s:
            return [convert.user(r) for r in s.scalars(q)]

    def count_users(self, *, team_only: bool = True) -> int:
        q = select(func.count()).select_from(UserRow)
        if team_only:
            q = q.where(UserRow.is_local.is_(False))
        with self._scope() as s:
            return int(s.scalar(q) or 0)

    def set_password(self, user_id: int, password: str) -> None:
        """A new password; every session of the user ends (they sign in again)."""
        user = self.get_user(user_id)
        check_password(password, user.username)
        password_hash = _hasher.hash(password)
        with self._scope(write=True) as s:
            row = s.get(UserRow, user_id)
            if row is None:
                raise NotFound(f"no user with id {user_id}")
            row.password_hash = password_hash
        self.revoke_user_sessions(user_id)

    def remove_user(self, admin: User, user_id: int) -> None:
        """An admin removes a member: no more sign-in, every session ends; runs are kept."""
        if not admin.is_admin:
            raise PermissionDenied("only an admin may remove a member")
        if admin.id == user_id:
            raise InvalidInput("an admin cannot remove themself")
        with self._scope(write=True) as s:
            row = s.get(UserRow, user_id)
            if row is None or row.is_local:
                raise NotFound(f"no member with id {user_id}")
            row.removed_at = row.removed_at or utcnow()
        self.revoke_user_sessions(user_id)

    def create_invite(
        self, admin: User, *, is_admin: bool = False, ttl: dt.timedelta = dt.timedelta(days=7)
    ) -> Invite:
        """An invite token that lets one person create an account (admins only)."""
        if not admin.is_admin:
            raise PermissionDenied("only an admin can create invites")
        now = utcnow()
        with self._scope(write=True) as s:
            row = InviteRow(
                token=secrets.token_urlsafe(32),
                created_by=admin.id,
                created_at=now,
                expires_at=now + ttl,
                is_admin=is_admin,
            )
            return convert.invite(added(s, row))

    def accept_invite(self, token: str, username: str, password: str) -> User:
        """Create the account an invite allows; the invite is then used up."""
        with self._scope() as s:
            row = s.get(InviteRow, token)
            if row is None or row.used_by is not None or row.expires_at < utcnow():
                raise NotFound("this invite is unknown, used or expired")
            is_admin = row.is_admin
        user = self.create_user(username, password, is_admin=is_admin)
        with self._scope(write=True) as s:
            row = s.get(InviteRow, token)
            if row is None or row.used_by is not None:
                raise Conflict("this invite was used meanwhile")
            row.used_by, row.used_at = user.id, utcnow()
        return user

    # ---- share links ---------------------------------------------------------------------

    def create_share_link(
        self,
        run_ids: Sequence[str],
        *,
        viewer: User,
        title: str = "",
        ttl: dt.timedelta | None = None,
    ) -> ShareLink:
        """A link (unguessable token) to a run or a comparison; `viewer` must see each run."""
        ids = list(dict.fromkeys(run_ids))
        if not ids or len(ids) > 20:
            raise InvalidInput("a share link names 1 to 20 runs")
        now = utcnow()
        with self._scope(write=True) as s:
            for run_id in ids:
                viewable_run(s, run_id, viewer)
            row = ShareLinkRow(
                token=secrets.token_urlsafe(24),
                created_by=viewer.id,
                run_ids=ids,
                title=title[:200],
                created_at=now,
                expires_at=now + ttl if ttl else None,
            )
            return convert.share_link(added(s, row))

    def resolve_share_link(self, token: str, *, viewer: Viewer) -> ShareLink:
        """The link, if it exists, has not expired, and names runs its creator may still see
        (a run made private by its owner after a team member shared it is dropped). Holding
        the link is what gives access: `viewer` need only be signed in. NotFound otherwise."""
        if not isinstance(token, str) or not re.fullmatch(r"[A-Za-z0-9_-]{16,64}", token):
            raise NotFound("no such share link")
        with self._scope() as s:
            row = s.get(ShareLinkRow, token)
            if row is None or (row.expires_at is not None and row.expires_at < utcnow()):
                raise NotFound("no such share link (or it has expired)")
            creator = s.get(UserRow, row.created_by)
            visible = []
            for run_id in row.run_ids:
                run = s.get(RunRow, run_id)
                if (
                    run is not None
                    and creator is not None
                    and (run.owner_id == creator.id or run.visibility == "team" or creator.is_admin)
                ):
                    visible.append(run_id)
            if not visible:
                raise NotFound("no such share link, or its runs are gone")
            link = convert.share_link(row)
        return ShareLink(
            link.token,
            link.created_by,
            tuple(visible),
            link.title,
            link.created_at,
            link.expires_at,
        )

    def share_viewer(self, token: str, *, viewer: User) -> tuple[ShareLink, LinkViewer]:
        """The link and a read-only viewer that also sees its runs (NotFound if invalid)."""
        if not isinstance(viewer, User):
            raise PermissionDenied("sign in to open a share link")
        link = self.resolve_share_link(token, viewer=viewer)
        return link, LinkViewer(viewer, frozenset(link.run_ids), link.token)

    def list_share_links(self, run_id: str, *, viewer: User) -> list[ShareLink]:
        """The links naming a run: all of them for its owner or an admin, else the viewer's."""
        with self._scope() as s:
            run = viewable_run(s, run_id, viewer)
            rows = s.scalars(select(ShareLinkRow).order_by(ShareLinkRow.created_at)).all()
            mine = viewer.is_admin or run.owner_id == viewer.id
            return [
                convert.share_link(r)
                for r in rows
                if run_id in (r.run_ids or []) and (mine or r.created_by == viewer.id)
            ]

    def delete_share_link(self, token: str, *, viewer: User) -> None:
        """Revoke a link: its creator, an admin, or the owner of every run it names."""
        with self._scope(write=True) as s:
            row = s.get(ShareLinkRow, token)
            if row is None:
                raise NotFound("no such share link")
            owners = {r.owner_id for r in (s.get(RunRow, i) for i in row.run_ids) if r is not None}
            if not (row.created_by == viewer.id or viewer.is_admin or owners == {viewer.id}):
                raise PermissionDenied(
                    "only its creator, an admin or the owner of its runs may revoke a share link"
                )
            s.delete(row)


_DUMMY_HASH = _hasher.hash("not a real password: equal time for unknown users")

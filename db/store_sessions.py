"""Server-side sign-in sessions and sign-in throttling.

A session starts pending: the dashboard creates it with a one-time ticket (valid for
TICKET_TTL), and the browser trades the ticket for its cookie at `/auth/complete`, where the
session gets its random token. Only sha256 digests of tickets and tokens are stored. A
session ends when it expires or is revoked: sign-out ends one, a password change, removing a
member and an admin's "sign out everywhere" end all of a user's sessions at once.

Throttling counts failed sign-ins per account and per client address. After FREE_FAILURES
(per account) or FREE_FAILURES_ADDR (per address) the next attempt waits 2, 4, 8... seconds,
up to MAX_BLOCK; an admin lifts an account's block. Counts older than WINDOW start again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import delete, select, update

from db import convert
from db.entities import User
from db.errors import PermissionDenied, TooManyAttempts
from db.models import SessionRow, SignInThrottleRow, UserRow
from db.passwords import username_key
from db.session import StoreBase, utcnow

SESSION_TTL = dt.timedelta(days=7)
TICKET_TTL = dt.timedelta(minutes=2)
TOUCH_EVERY = dt.timedelta(minutes=1)
FREE_FAILURES = 5
FREE_FAILURES_ADDR = 20
MAX_BLOCK = dt.timedelta(minutes=15)
WINDOW = dt.timedelta(hours=1)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def throttle_keys(username: str, client: str) -> list[str]:
    keys = [f"user:{username_key(username)}"[:128]]
    if client:
        keys.append(f"addr:{client}"[:128])
    return keys


def _free(key: str) -> int:
    return FREE_FAILURES_ADDR if key.startswith("addr:") else FREE_FAILURES


class SessionsMixin(StoreBase):
    # ---- sessions ------------------------------------------------------------------------

    def create_session(self, user: User, *, client: str = "") -> tuple[int, str]:
        """A pending session for `user`: its id and one-time ticket (see `redeem_ticket`)."""
        ticket = secrets.token_urlsafe(32)
        now = utcnow()
        with self._scope(write=True) as s:
            row = SessionRow(
                user_id=user.id,
                ticket_hash=digest(ticket),
                ticket_expires_at=now + TICKET_TTL,
                created_at=now,
                expires_at=now + SESSION_TTL,
                last_seen=now,
                client=client[:64],
            )
            s.add(row)
            s.flush()
            return row.id, ticket

    def redeem_ticket(self, ticket: str) -> str | None:
        """Trade a fresh, unused ticket for the session's token (once); None otherwise."""
        if not isinstance(ticket, str) or not 16 <= len(ticket) <= 128:
            return None
        token = secrets.token_urlsafe(32)
        now = utcnow()
        with self._scope(write=True) as s:
            row = s.scalars(select(SessionRow).where(SessionRow.ticket_hash == digest(ticket)))
            row = row.first()
            if row is None or row.revoked_at is not None or row.token_hash is not None:
                return None
            if row.ticket_expires_at is None or row.ticket_expires_at < now:
                return None
            row.token_hash, row.ticket_hash, row.last_seen = digest(token), None, now
        return token

    def session_user(self, token: str | None) -> tuple[User, int] | None:
        """The user and session id of an active session token; None if unknown or ended."""
        if not token or not isinstance(token, str) or len(token) > 128:
            return None
        now = utcnow()
        with self._scope() as s:
            row = s.scalars(select(SessionRow).where(SessionRow.token_hash == digest(token)))
            row = row.first()
            if row is None or row.revoked_at is not None or row.expires_at < now:
                return None
            user = s.get(UserRow, row.user_id)
            if user is None or user.removed_at is not None:
                return None
            result = (convert.user(user), row.id)
            stale = row.last_seen < now - TOUCH_EVERY
        if stale:
            with self._scope(write=True) as s:
                s.execute(update(SessionRow).where(SessionRow.id == row.id).values(last_seen=now))
        return result

    def session_active(self, session_id: int) -> bool:
        now = utcnow()
        with self._scope() as s:
            row = s.get(SessionRow, session_id)
            if row is None or row.revoked_at is not None or row.expires_at < now:
                return False
            user = s.get(UserRow, row.user_id)
            return user is not None and user.removed_at is None

    def revoke_session(self, session_id: int) -> None:
        with self._scope(write=True) as s:
            s.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id, SessionRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )

    def revoke_user_sessions(self, user_id: int, *, by: User | None = None) -> int:
        """End every session of `user_id` (an admin, or the user themself, when `by` is given)."""
        if by is not None and not (by.is_admin or by.id == user_id):
            raise PermissionDenied("only an admin may sign another member out")
        with self._scope(write=True) as s:
            result = s.execute(
                update(SessionRow)
                .where(SessionRow.user_id == user_id, SessionRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            return int(result.rowcount or 0)

    def active_sessions(self, user_id: int) -> int:
        now = utcnow()
        with self._scope() as s:
            rows = s.scalars(
                select(SessionRow.id).where(
                    SessionRow.user_id == user_id,
                    SessionRow.revoked_at.is_(None),
                    SessionRow.expires_at > now,
                )
            )
            return len(list(rows))

    # ---- throttling ----------------------------------------------------------------------

    def sign_in_wait(self, username: str, client: str = "") -> float:
        """Seconds before `username` (from `client`) may try again; 0 when allowed now."""
        now = utcnow()
        with self._scope() as s:
            rows = [s.get(SignInThrottleRow, k) for k in throttle_keys(username, client)]
        waits = [
            (r.blocked_until - now).total_seconds()
            for r in rows
            if r is not None and r.blocked_until is not None
        ]
        return max([0.0, *waits])

    def check_sign_in_allowed(self, username: str, client: str = "") -> None:
        wait = self.sign_in_wait(username, client)
        if wait > 0:
            raise TooManyAttempts(wait)

    def record_sign_in(self, username: str, client: str, *, ok: bool) -> None:
        """Count a failure (and block after the free ones), or clear the account's count."""
        now = utcnow()
        keys = throttle_keys(username, client)
        with self._scope(write=True) as s:
            if ok:
                s.execute(delete(SignInThrottleRow).where(SignInThrottleRow.key == keys[0]))
                return
            for key in keys:
                row = s.get(SignInThrottleRow, key)
                if row is None:
                    row = SignInThrottleRow(key=key, failures=0, last_failure=now)
                    s.add(row)
                elif row.last_failure < now - WINDOW:
                    row.failures, row.blocked_until = 0, None
                row.failures += 1
                row.last_failure = now
                over = row.failures - _free(key)
                if over >= 0:
                    seconds = min(2.0 ** min(over + 1, 20), MAX_BLOCK.total_seconds())
                    row.blocked_until = now + dt.timedelta(seconds=seconds)

    def lift_sign_in_block(self, admin: User, username: str | None = None) -> int:
        """An admin clears the failures of one account (or, with no name, every block)."""
        if not admin.is_admin:
            raise PermissionDenied("only an admin may lift a sign-in block")
        q = delete(SignInThrottleRow)
        if username is not None:
            q = q.where(SignInThrottleRow.key == f"user:{username_key(username)}")
        with self._scope(write=True) as s:
            return int(s.execute(q).rowcount or 0)

    def blocked_accounts(self) -> list[tuple[str, int, dt.datetime | None]]:
        """(account or address, failures, blocked until) of every current count."""
        with self._scope() as s:
            rows = s.scalars(select(SignInThrottleRow).order_by(SignInThrottleRow.key))
            return [(r.key, r.failures, r.blocked_until) for r in rows]

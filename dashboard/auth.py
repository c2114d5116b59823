"""Signing in, invites and the first admin. Passwords are checked by the store (argon2id),
which also throttles repeated failures per account and per client address.

Each function returns None on success (the user is then signed in for this session) or a
message for the person at the keyboard; failures never say whether a username exists.
"""

from __future__ import annotations

from dashboard import services, session_cookie
from db.errors import StoreError, TooManyAttempts
from db.store import Store

BAD_LOGIN = "Wrong username or password."


def try_sign_in(store: Store, username: str, password: str) -> str | None:
    if not username.strip() or not password:
        return "Enter your username and password."
    try:
        user = store.authenticate(
            username.strip(), password, client=session_cookie.client_address()
        )
    except TooManyAttempts as exc:
        return str(exc)
    if user is None:
        return BAD_LOGIN
    services.sign_in(user)
    return None


def accept_invite(store: Store, token: str, username: str, password: str) -> str | None:
    try:
        user = store.accept_invite(token, username.strip(), password)
    except StoreError as exc:
        return str(exc)
    services.sign_in(user)
    return None


def create_first_admin(store: Store, username: str, password: str) -> str | None:
    """Only while the database has no team user at all."""
    if store.count_users() > 0:
        return "An admin already exists; sign in, or ask for an invite."
    try:
        user = store.create_user(username.strip(), password, is_admin=True)
    except StoreError as exc:
        return str(exc)
    services.sign_in(user)
    return None

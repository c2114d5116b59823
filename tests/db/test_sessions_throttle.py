"""Server-side sessions, sign-in throttling, the password and username rules."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from db import store_users
from db.errors import Conflict, InvalidInput, PermissionDenied, TooManyAttempts
from db.store import Store

PW = "a long team password"


def _signed_in(store: Store, user) -> str:
    _, ticket = store.create_session(user)
    token = store.redeem_ticket(ticket)
    assert token is not None and store.session_user(token)[0] == user
    return token


def test_ticket_is_one_time_and_sessions_end(store: Store) -> None:
    ada = store.create_user("ada", PW)
    session_id, ticket = store.create_session(ada)
    token = store.redeem_ticket(ticket)
    assert store.session_user(token) == (ada, session_id)
    assert store.redeem_ticket(ticket) is None  # a replayed ticket
    assert store.session_user("forged-token-" + "x" * 30) is None
    store.revoke_session(session_id)  # sign-out: the captured cookie no longer works
    assert store.session_user(token) is None and not store.session_active(session_id)


def test_password_change_removal_and_sign_out_everywhere_end_every_session(store: Store):
    admin = store.create_user("root", PW, is_admin=True)
    bob = store.create_user("bob", PW)
    first, second = _signed_in(store, bob), _signed_in(store, bob)
    store.set_password(bob.id, "another long password")
    assert store.session_user(first) is None and store.session_user(second) is None
    third = _signed_in(store, bob)
    with pytest.raises(PermissionDenied):
        store.revoke_user_sessions(admin.id, by=bob)
    assert store.revoke_user_sessions(bob.id, by=admin) == 1
    assert store.session_user(third) is None
    fourth = _signed_in(store, bob)
    store.remove_user(admin, bob.id)
    assert store.session_user(fourth) is None
    assert store.authenticate("bob", "another long password") is None
    assert "bob" not in [u.username for u in store.list_users()]


def test_expired_ticket_and_session_are_refused(store: Store) -> None:
    ada = store.create_user("ada", PW)
    _, ticket = store.create_session(ada)
    with store.engine.begin() as conn:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        conn.execute(text("UPDATE sessions SET ticket_expires_at = :t"), {"t": past})
    assert store.redeem_ticket(ticket) is None
    token = _signed_in(store, ada)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE sessions SET expires_at = :t"), {"t": past})
    assert store.session_user(token) is None


def test_the_31st_guess_is_refused_even_when_right(store: Store) -> None:
    store.create_user("ada", PW)
    admin = store.create_user("root", PW, is_admin=True)
    refused = 0
    for _ in range(30):
        try:
            assert store.authenticate("ada", "wrong guess number", client="10.0.0.9") is None
        except TooManyAttempts:
            refused += 1
    assert refused >= 24  # after five free failures, every guess waits
    with pytest.raises(TooManyAttempts, match="ask an admin"):
        store.authenticate("ada", PW, client="10.0.0.9")
    with pytest.raises(TooManyAttempts):  # from another address too: the account is blocked
        store.authenticate("ADA", PW, client="10.0.0.10")
    assert store.lift_sign_in_block(admin, "ada") == 1
    assert store.authenticate("ada", PW, client="10.0.0.10") is not None


def test_one_address_guessing_many_accounts_is_throttled(store: Store) -> None:
    store.create_user("carol", PW)
    for i in range(20):  # twenty accounts guessed once each from one address
        assert store.sign_in_wait(f"user{i}", "10.9.9.9") == 0
        store.record_sign_in(f"user{i}", "10.9.9.9", ok=False)
    with pytest.raises(TooManyAttempts):  # the address now waits, even with a right password
        store.authenticate("carol", PW, client="10.9.9.9")
    assert store.authenticate("carol", PW, client="10.1.1.1") is not None


def test_delays_grow(store: Store) -> None:
    store.create_user("ada", PW)
    waits = []
    for _ in range(9):
        store.record_sign_in("ada", "", ok=False)
        waits.append(store.sign_in_wait("ada"))
    assert waits[:4] == [0.0] * 4
    grown = waits[4:]
    assert all(b > a for a, b in zip(grown, grown[1:], strict=False)) and grown[-1] <= 900


def test_no_write_lock_is_held_across_the_password_hash(store: Store, monkeypatch) -> None:
    """While the hash is checked, another connection can write at once (SQLite would make it
    wait for a writer's BEGIN IMMEDIATE; PostgreSQL row locks do not arise here)."""
    store.create_user("ada", PW)
    wrote: list[bool] = []
    real = store_users._hasher

    def write_now() -> None:
        other = Store(store.url, artifact_root=store.artifacts.root)
        conn = other.engine.raw_connection()
        try:
            cur = conn.cursor()
            if other.dialect == "sqlite":
                cur.execute("PRAGMA busy_timeout=300")
                cur.execute("BEGIN IMMEDIATE")
            else:
                cur.execute("SET lock_timeout = '300ms'")
            cur.execute("UPDATE users SET is_admin = is_admin")
            conn.commit() if other.dialect != "sqlite" else cur.execute("COMMIT")
            wrote.append(True)
        finally:
            conn.close()
            other.dispose()

    class Hasher:
        def verify(self, stored, password):
            write_now()
            return real.verify(stored, password)

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(store_users, "_hasher", Hasher())
    assert store.authenticate("ada", PW) is not None
    assert wrote == [True]


def test_password_rules(store: Store) -> None:
    for bad, why in (
        ("12345678", "at least 12"),
        (" " * 14, "spaces"),
        ("aaaaaaaaaaaaaa", "repeated"),
        ("123456789012", "common"),
        ("Password1234", "common"),
        ("qwertyuiop123", "common"),
    ):
        with pytest.raises(InvalidInput, match=why):
            store.create_user("ada", bad)
    ada = store.create_user("ada", PW)
    with pytest.raises(InvalidInput, match="at least 12"):
        store.set_password(ada.id, "short one")


def test_usernames_are_unique_ignoring_case_and_unicode_form(store: Store) -> None:
    store.create_user("admin1", PW)
    for twin in ("ADMIN1", "Admin1", "ａｄｍｉｎ１"):  # the last is fullwidth
        with pytest.raises(Conflict):
            store.create_user(twin, PW)
    assert store.user_by_name("ADMIN1").username == "admin1"
    assert store.authenticate("Admin1", PW) is not None
    with pytest.raises(InvalidInput, match="username"):
        store.create_user("LOCAL", PW)

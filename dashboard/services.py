"""The dashboard's doors to the store and the queue, and who is looking.

One Store per database URL per process (`st.cache_resource`). The viewer is the signed-in
user in team mode (`DIFFLAB_TEAM_MODE=1`), else the single local user. Pages call these
helpers rather than the store's internals, so that the pages read like the UI.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import media_guard, session_cookie
from dashboard.safe_text import md_lines, md_text
from db.entities import User
from db.errors import DatabaseUnavailable, NotFound, StoreError
from db.store import Store
from diffusion import settings
from diffusion.settings import artifact_dir, database_url

USER_KEY = "difflab_user_id"
SESSION_KEY = "difflab_session_id"
LOCAL_KEY = "difflab_local_user"
SIGNED_OUT = "difflab_signed_out"  # this session signed out: ignore the (stale) cookie


team_mode = settings.team_mode


@st.cache_resource(show_spinner=False, max_entries=4)  # one per database the process uses
def _store_for(url: str, artifact_root: str) -> Store:
    store = Store(url, artifact_root=artifact_root)
    if url.startswith("sqlite") and not store.is_current():
        store.upgrade()  # a fresh local data folder; `difflab up` normally did this already
    return store


def get_store() -> Store:
    """The Store for `DIFFLAB_DATABASE_URL` (or the SQLite file in the data folder)."""
    return _store_for(database_url(), str(artifact_dir()))


def current_user() -> User | None:
    """The viewer: the signed-in user in team mode, the local user otherwise; None if signed out.

    In team mode the session is checked against the database on every run, so a session
    ended elsewhere (sign-out everywhere, a password change, a removed member) ends here too.
    """
    store = get_store()
    if not team_mode():  # the local user, looked up (a write, the first time) once a session
        cached = st.session_state.get(LOCAL_KEY)
        if cached is None or cached[0] != store.url:
            cached = (store.url, store.local_user())
            st.session_state[LOCAL_KEY] = cached
        return cached[1]
    session_id = st.session_state.get(SESSION_KEY)
    if session_id is not None:
        if store.session_active(int(session_id)):
            user = _get_user(store, st.session_state.get(USER_KEY))
            if user is not None:
                media_guard.remember_viewer(user.id)
                return user
        _forget()
        return None
    if st.session_state.get(SIGNED_OUT):
        return None
    found = store.session_user(session_cookie.cookie_token())
    if found is None:
        return None
    user, session_id = found
    st.session_state[USER_KEY], st.session_state[SESSION_KEY] = user.id, session_id
    media_guard.remember_viewer(user.id)
    return user


def _get_user(store: Store, user_id: Any) -> User | None:
    try:
        return store.get_user(int(user_id))
    except (NotFound, StoreError, TypeError, ValueError):
        return None


def _forget() -> None:
    st.session_state.pop(USER_KEY, None)
    st.session_state.pop(SESSION_KEY, None)
    media_guard.remember_viewer(None)


def require_user() -> User:
    """The viewer, or stop the page with a sign-in message."""
    user = current_user()
    if user is None:
        st.warning("Sign in to see this page.")
        st.stop()
    return user


def sign_in(user: User) -> None:
    """Sign in: a server-side session for this browser session, and (through the one-time
    ticket the browser trades at /auth/complete) an HttpOnly cookie for reloads."""
    store = get_store()
    session_id, ticket = store.create_session(user, client=session_cookie.client_address())
    st.session_state[USER_KEY], st.session_state[SESSION_KEY] = user.id, session_id
    st.session_state.pop(SIGNED_OUT, None)
    session_cookie.go_to(session_cookie.complete_url(ticket, session_cookie.current_path()))


def sign_out(*, everywhere: bool = False) -> None:
    """End this session (or every session of the user) in the database; clear the cookie."""
    store = get_store()
    session_id, user_id = st.session_state.get(SESSION_KEY), st.session_state.get(USER_KEY)
    if everywhere and user_id is not None:
        store.revoke_user_sessions(int(user_id))
    elif session_id is not None:
        store.revoke_session(int(session_id))
    _forget()
    st.session_state[SIGNED_OUT] = True
    session_cookie.go_to(session_cookie.SIGNOUT_PATH)


def query_param(name: str) -> str | None:
    """A single query parameter, stripped, or None."""
    value: Any = st.query_params.get(name)
    if isinstance(value, list):
        value = value[-1] if value else None
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def show_store_error(exc: Exception) -> None:
    """A store error as a readable message (never a traceback)."""
    if isinstance(exc, NotFound):
        st.error("Not found or not shared with you.")
    elif isinstance(exc, DatabaseUnavailable):
        st.error(f"The lab's database cannot be used: {md_text(exc)}")
    else:
        st.error(md_lines(str(exc) or exc.__class__.__name__))


def share_url(token: str) -> str:
    """The full address of a share link, from the address the browser used."""
    base = ""
    try:
        url = st.context.url or ""
    except AttributeError:  # older Streamlit without st.context.url
        url = ""
    if url:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
    return f"{base}/shared?token={token}"

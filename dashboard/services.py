"""The dashboard's doors to the store and the queue, and who is looking.

One Store per database URL per process (`st.cache_resource`). The viewer is the signed-in
user in team mode (`DIFFLAB_TEAM_MODE=1`), else the single local user. Pages call these
helpers rather than the store's internals, so that the pages read like the UI.
"""

from __future__ import annotations

import os
from typing import Any

import streamlit as st

from dashboard import session_cookie
from db.entities import User
from db.errors import DatabaseUnavailable, NotFound, StoreError
from db.settings import artifact_dir, database_url
from db.store import Store

USER_KEY = "difflab_user_id"
LOCAL_KEY = "difflab_local_user"
SIGNED_OUT = "difflab_signed_out"  # this session signed out: ignore the (stale) cookie


def team_mode() -> bool:
    """True when sign-in is required (`DIFFLAB_TEAM_MODE=1`)."""
    return os.environ.get("DIFFLAB_TEAM_MODE", "").strip().lower() in ("1", "true", "yes")


@st.cache_resource(show_spinner=False)
def _store_for(url: str, artifact_root: str) -> Store:
    store = Store(url, artifact_root=artifact_root)
    if url.startswith("sqlite") and not store.is_current():
        store.upgrade()  # a fresh local data folder; `difflab up` normally did this already
    return store


def get_store() -> Store:
    """The Store for `DIFFLAB_DATABASE_URL` (or the SQLite file in the data folder)."""
    return _store_for(database_url(), str(artifact_dir()))


def current_user() -> User | None:
    """The viewer: the signed-in user in team mode, the local user otherwise; None if signed out."""
    store = get_store()
    if not team_mode():  # the local user, looked up (a write, the first time) once a session
        cached = st.session_state.get(LOCAL_KEY)
        if cached is None or cached[0] != store.url:
            cached = (store.url, store.local_user())
            st.session_state[LOCAL_KEY] = cached
        return cached[1]
    user_id = st.session_state.get(USER_KEY)
    if user_id is None and not st.session_state.get(SIGNED_OUT):
        user_id = session_cookie.user_id_from_cookie()
        if user_id is not None:
            st.session_state[USER_KEY] = user_id
    if user_id is None:
        return None
    try:
        return store.get_user(int(user_id))
    except (NotFound, StoreError, ValueError):
        st.session_state.pop(USER_KEY, None)
        return None


def require_user() -> User:
    """The viewer, or stop the page with a sign-in message."""
    user = current_user()
    if user is None:
        st.warning("Sign in to see this page.")
        st.stop()
    return user


def sign_in(user: User) -> None:
    """Sign in for this browser session, and (by cookie) for reloads in the next week."""
    st.session_state[USER_KEY] = user.id
    st.session_state.pop(SIGNED_OUT, None)
    session_cookie.remember(user.id)


def sign_out() -> None:
    st.session_state.pop(USER_KEY, None)
    st.session_state[SIGNED_OUT] = True
    session_cookie.forget()


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
        st.error(f"The lab's database cannot be used: {exc}")
    else:
        st.error(str(exc) or exc.__class__.__name__)


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

"""Staying signed in (team mode): a server-side session behind an HttpOnly cookie.

The cookie holds `token.signature`: a random session token (its sha256 is a row of the
`sessions` table) and an HMAC-SHA256 of it with the lab's signing key (see
`dashboard.signing_key`). Knowing the key is not enough to sign in (the token must name a
live session), and ending a session in the database ends it everywhere at once.

Streamlit scripts cannot set response headers, so the cookie is set by the server itself
(`dashboard.auth_routes`, served by `dashboard/server.py` in the same process): after the
password is checked, the page sends the browser to `/auth/complete?ticket=...`, which trades
the one-time ticket for the cookie (HttpOnly, SameSite=Lax, Secure behind TLS) and comes back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import quote

import streamlit as st

from dashboard.signing_key import signing_key

COOKIE = "difflab_session"
MAX_AGE_S = 7 * 24 * 3600
COMPLETE_PATH = "/auth/complete"
SIGNOUT_PATH = "/auth/signout"
PENDING = "difflab_cookie_pending"


def _mac(token: str, key: bytes | None = None) -> str:
    return hmac.new(key or signing_key(), token.encode(), hashlib.sha256).hexdigest()


def sign(token: str, key: bytes | None = None) -> str:
    """The cookie value for a session token."""
    return f"{token}.{_mac(token, key)}"


def unsign(value: str | None, key: bytes | None = None) -> str | None:
    """The session token in a cookie value whose signature is right; None otherwise."""
    if not value or not isinstance(value, str) or value.count(".") != 1 or len(value) > 256:
        return None
    token, signature = value.split(".")
    if not token or not hmac.compare_digest(_mac(token, key), signature):
        return None
    return token


def cookie_token() -> str | None:
    """The session token this browser sent (verified signature), or None."""
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # no browser context (AppTest, bare mode)
        return None
    return unsign(value) if value else None


def client_address() -> str:
    try:
        return str(st.context.ip_address or "")
    except Exception:
        return ""


def safe_next(path: str | None) -> str:
    """A same-site path to come back to (never another host)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path


def current_path() -> str:
    try:
        url = st.context.url or ""
    except Exception:
        return "/"
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    query = parts.query
    if not query:  # st.context.url may leave the query out: a deep link keeps its token
        from urllib.parse import urlencode

        query = urlencode(st.query_params.to_dict())
    return safe_next(parts.path + (f"?{query}" if query else ""))


def complete_url(ticket: str, next_path: str = "/") -> str:
    return f"{COMPLETE_PATH}?ticket={quote(ticket)}&next={quote(safe_next(next_path))}"


def go_to(url: str) -> None:
    """Ask the next run to send the browser to `url` (a same-site path)."""
    st.session_state[PENDING] = url


def flush() -> None:
    """Send the browser where a sign-in or sign-out asked (one invisible script and a link)."""
    url = st.session_state.pop(PENDING, None)
    if not url:
        return
    script = f"<script>window.location.replace({json.dumps(url)});</script>"
    st.sidebar.html(script, unsafe_allow_javascript=True)
    st.sidebar.link_button("Continue", url)

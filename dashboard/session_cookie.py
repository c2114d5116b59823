"""Staying signed in across reloads (team mode): a signed, expiring cookie.

The cookie holds `user_id.expiry.signature`, the signature an HMAC-SHA256 with the lab's
secret (`DIFFLAB_SECRET_KEY`, or a random key kept in the data folder, mode 0600). It is set
and cleared by a line of JavaScript (Streamlit cannot set headers) with SameSite=Strict; it
proves nothing but "this browser signed in as this user before the expiry".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

import streamlit as st

from db.settings import data_dir

COOKIE = "difflab_session"
MAX_AGE_S = 7 * 24 * 3600
PENDING = "difflab_cookie_pending"


def _secret() -> bytes:
    env = os.environ.get("DIFFLAB_SECRET_KEY")
    if env:
        return env.encode()
    path = data_dir() / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp-{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # first writer wins; others read its key
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return Path(path).read_text().strip().encode()


def _sign(payload: str) -> str:
    return hmac.new(_secret(), payload.encode(), hashlib.sha256).hexdigest()


def make_token(user_id: int, now: float | None = None) -> str:
    expiry = int((now or time.time()) + MAX_AGE_S)
    payload = f"{int(user_id)}.{expiry}"
    return f"{payload}.{_sign(payload)}"


def read_token(token: str | None, now: float | None = None) -> int | None:
    """The user id in a valid, unexpired token; None otherwise."""
    if not token or token.count(".") != 2:
        return None
    user, expiry, signature = token.split(".")
    if not (user.isdigit() and expiry.isdigit()):
        return None
    if not hmac.compare_digest(_sign(f"{user}.{expiry}"), signature):
        return None
    if int(expiry) < (now or time.time()):
        return None
    return int(user)


def user_id_from_cookie() -> int | None:
    try:
        return read_token(st.context.cookies.get(COOKIE))
    except Exception:  # no browser context (AppTest, bare mode)
        return None


def remember(user_id: int) -> None:
    st.session_state[PENDING] = make_token(user_id)


def forget() -> None:
    st.session_state[PENDING] = ""


def flush() -> None:
    """Write a pending cookie change into the browser (one invisible script)."""
    if PENDING not in st.session_state:
        return
    value = st.session_state.pop(PENDING)
    age = MAX_AGE_S if value else 0
    script = (
        "<script>document.cookie = "
        f"{json.dumps(COOKIE)} + '=' + {json.dumps(value)} + "
        f"'; Max-Age={age}; Path=/; SameSite=Strict' + "
        "(location.protocol === 'https:' ? '; Secure' : '');</script>"
    )
    st.sidebar.html(script, unsafe_allow_javascript=True)  # the sidebar: no gap in the page

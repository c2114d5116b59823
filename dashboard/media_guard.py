"""Media (`/media/<id>`) only for the browser whose pages showed it.

Streamlit serves the images a page shows (`st.image`) at `/media/<content hash>.<ext>` to
anyone who asks. In team mode that would show a private run's samples to anyone with the
address. Here each Streamlit session notes whose pages it draws (`remember_viewer`), and
`MediaGuard` (an ASGI middleware of `dashboard/server.py`) serves a media file only to a
request whose session cookie names a user for whom a Streamlit session drew that file: the
store decided, when it drew the page, that this user may see it. Anything else gets 404.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

_lock = threading.Lock()
_viewers: dict[str, int] = {}  # Streamlit session id -> user id


def remember_viewer(user_id: int | None) -> None:
    """Record (or, with None, forget) the user this Streamlit session draws pages for."""
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
    except Exception:
        return
    if ctx is None:
        return
    with _lock:
        if user_id is None:
            _viewers.pop(ctx.session_id, None)
        else:
            _viewers[ctx.session_id] = int(user_id)


def is_media_path(path: str, base_url_path: str = "") -> bool:
    """Whether `path` is Streamlit's media endpoint, `<base>/media/<file>`. Only that: the
    app's own static files (`<base>/static/media/...`: its fonts, icons and scripts) are for
    everyone, the sign-in page included."""
    parts = [p for p in (base_url_path.strip("/"), "media") if p]
    return path.startswith("/" + "/".join(parts) + "/")


def _base_url_path() -> str:
    try:
        import streamlit as st

        return str(st.get_option("server.baseUrlPath") or "")
    except Exception:
        return ""


def file_id_of(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.split(".", 1)[0]


def drawn_for(user_id: int, file_id: str) -> bool:
    """Whether a live Streamlit session of `user_id` holds this media file."""
    try:
        from streamlit.runtime import Runtime

        manager = Runtime.instance().media_file_mgr
        by_session = manager._files_by_session_and_coord  # noqa: SLF001 (no public view)
    except Exception:  # no runtime, or Streamlit changed: refuse rather than leak
        return False
    with _lock:
        sessions = [sid for sid, uid in _viewers.items() if uid == user_id]
    return any(file_id in dict(by_session.get(sid, {})).values() for sid in sessions)


Lookup = Callable[[str | None], Awaitable[int | None]]


class MediaGuard:
    """ASGI middleware: `/media/...` answers 404 unless the cookie's user may see the file."""

    def __init__(self, app: Any, *, user_for_cookie: Lookup, enabled: Callable[[], bool]):
        self.app = app
        self.user_for_cookie = user_for_cookie
        self.enabled = enabled
        self._base: str | None = None  # server.baseUrlPath, read at the first request

    def _guards(self, path: str) -> bool:
        if self._base is None:
            self._base = _base_url_path()
        return is_media_path(path, self._base)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope.get("type") != "http" or not self._guards(path) or not self.enabled():
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse

        from dashboard.session_cookie import COOKIE

        user_id = await self.user_for_cookie(Request(scope).cookies.get(COOKIE))
        if user_id is None or not drawn_for(user_id, file_id_of(path)):
            await PlainTextResponse("Not found", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)

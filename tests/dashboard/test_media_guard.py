"""The media guard of `dashboard/server.py` (team mode) answers only for Streamlit's media
endpoint. Broken version caught: matching "/media/" anywhere in the path, which refused the
app's own fonts at /static/media/ (the Material icon font then shows its ligature names, such
as "check_circle", as text on every page)."""

from __future__ import annotations

import asyncio

import pytest

from dashboard.media_guard import MediaGuard, is_media_path


@pytest.mark.parametrize(
    ("path", "base", "guarded"),
    [
        ("/media/0123abcd.png", "", True),
        ("/static/media/MaterialSymbols-Rounded.nEdyypZU.woff2", "", False),
        ("/static/media/SourceSansVF-Upright.ttf.BsWL4Kly.woff2", "", False),
        ("/lab/media/0123abcd.png", "lab", True),
        ("/lab/media/0123abcd.png", "/lab/", True),
        ("/lab/static/media/font.woff2", "lab", False),
        ("/media/0123abcd.png", "lab", False),  # outside the app's base path
        ("/mediafile", "", False),
        ("/", "", False),
    ],
)
def test_only_the_media_endpoint_is_guarded(path: str, base: str, guarded: bool) -> None:
    assert is_media_path(path, base) is guarded


def _call(path: str) -> int:
    """Status the guard (enabled, no signed-in user) gives `path`; 200 where it passes the
    request on to the app."""
    sent: list[dict] = []

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def nobody(cookie: str | None) -> int | None:
        return None

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    guard = MediaGuard(app, user_for_cookie=nobody, enabled=lambda: True)
    scope = {"type": "http", "path": path, "headers": [], "method": "GET", "query_string": b""}
    asyncio.run(guard(scope, receive, send))
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


def test_fonts_pass_and_media_needs_a_user() -> None:
    assert _call("/static/media/MaterialSymbols-Rounded.nEdyypZU.woff2") == 200
    assert _call("/media/0123abcd.png") == 404

"""The dashboard as one ASGI app: Streamlit (dashboard/app.py) plus the sign-in routes and the
media guard, served in the same process. Start it with

    streamlit run dashboard/server.py

(`difflab up` and the compose file do). `dashboard/app.py` alone still runs, without the
HttpOnly cookie (sign-in then lasts only while the tab is open) and without the media guard.

The runtime keeps disconnected browser sessions in `dashboard.sessions.ClosingSessionStorage`
(at most 32, shut down when evicted or expired), so that page loads do not pile up images and
session state in the server's memory (issue 14).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT.parent) not in sys.path:  # `streamlit run dashboard/server.py` from anywhere
    sys.path.insert(0, str(ROOT.parent))

from starlette.middleware import Middleware  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import RedirectResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402
from streamlit.starlette import App  # noqa: E402

from dashboard import sessions  # noqa: E402
from dashboard.auth_routes import ROUTES, user_for_cookie  # noqa: E402
from dashboard.media_guard import MediaGuard  # noqa: E402
from dashboard.services import team_mode  # noqa: E402


async def _default_page(request: Request) -> RedirectResponse:
    """/runs, the address people type or bookmark for the runs page, to where Streamlit serves
    its default page ("/"; at /runs it shows "Page not found" over an empty page), keeping the
    query (columns, sort, filter)."""
    query = request.url.query
    return RedirectResponse("./" + (f"?{query}" if query else ""), status_code=307)


app = App(
    ROOT / "app.py",
    routes=[*ROUTES, Route("/runs", _default_page, methods=["GET"])],
    middleware=[Middleware(MediaGuard, user_for_cookie=user_for_cookie, enabled=team_mode)],
)
# `app = App(...)` stays a plain call: `streamlit run` finds the ASGI app by reading this file
sessions.use_closing_storage(app)

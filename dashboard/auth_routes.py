"""The dashboard's own HTTP routes: the sign-in cookie, set and cleared by the server.

  GET /auth/complete?ticket=...&next=/path   trade a one-time ticket for the session cookie
  GET /auth/signout                          clear the cookie (the session already ended)

The cookie is HttpOnly (no script can read it), SameSite=Lax, and Secure when the browser
reached the lab over TLS (directly, or through a proxy that sets X-Forwarded-Proto: https).
"""

from __future__ import annotations

import functools

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from dashboard.session_cookie import (
    COMPLETE_PATH,
    COOKIE,
    MAX_AGE_S,
    SIGNOUT_PATH,
    safe_next,
    sign,
    unsign,
)
from db.store import Store


@functools.cache
def _store() -> Store:
    return Store.from_env()


def _secure(request: Request) -> bool:
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or proto == "https"


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


async def complete(request: Request) -> Response:
    ticket = request.query_params.get("ticket", "")
    token = await run_in_threadpool(_store().redeem_ticket, ticket)
    if token is None:  # used, expired or unknown: the sign-in page says what to do
        return _no_store(RedirectResponse("/", status_code=303))
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    response.set_cookie(
        COOKIE,
        sign(token),
        max_age=MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return _no_store(response)


async def signout(request: Request) -> Response:
    token = unsign(request.cookies.get(COOKIE))
    if token is not None:
        found = await run_in_threadpool(_store().session_user, token)
        if found is not None:
            await run_in_threadpool(_store().revoke_session, found[1])
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request))
    return _no_store(response)


async def user_for_cookie(value: str | None) -> int | None:
    token = unsign(value) if value else None
    if token is None:
        return None
    found = await run_in_threadpool(_store().session_user, token)
    return found[0].id if found else None


ROUTES = [
    Route(COMPLETE_PATH, complete, methods=["GET"]),
    Route(SIGNOUT_PATH, signout, methods=["GET"]),
]

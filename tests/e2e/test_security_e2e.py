"""The team lab against an attacker, in headless Chromium: a hostile run name on every page
makes no request leave the page; the sign-in cookie is HttpOnly and set by the server, and a
captured cookie is worthless after sign-out; /media of a private run needs a session that may
see it. The dashboard runs as `streamlit run dashboard/server.py`, as `difflab up` starts it.
"""

from __future__ import annotations

import http.server
import os
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from e2e_helpers import session_cookie, sign_in, start_dashboard, stop

from dashboard.runfiles import VIEWS

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "dashboard"))
PASSWORD = "a long team password"
# The run page builds only its open view, so each view is visited by its own URL.
RUN_VIEWS = tuple(f"run?id={{run}}&view={quote(v)}" for v in VIEWS)
PAGES = ("runs", *RUN_VIEWS, "gallery", "posterior", "team", "status", "new_run")


class Listener(http.server.ThreadingHTTPServer):
    """Counts every request that reaches it (a tracking pixel's server)."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                outer.hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def listener():
    server = Listener()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def team_lab(tmp_path: Path, free_port: int, listener: Listener):
    from dashboard_helpers import make_run

    from db.store import Store

    data = tmp_path / "lab"
    env = {
        **os.environ,
        "DIFFLAB_DATA_DIR": str(data),
        "DIFFLAB_DATABASE_URL": f"sqlite:///{data / 'difflab.db'}",
        "DIFFLAB_ARTIFACT_DIR": str(data / "artifacts"),
        "DIFFLAB_REDIS_URL": "redis://127.0.0.1:1/0",
        "DIFFLAB_TEAM_MODE": "1",
        "DIFFLAB_SECRET_KEY": "e2e signing key, long enough to be accepted",
        "PYTHONPATH": str(ROOT),
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    store = Store(env["DIFFLAB_DATABASE_URL"], artifact_root=data / "artifacts")
    store.upgrade()
    port = listener.server_address[1]
    hostile = (
        f"![x](http://127.0.0.1:{port}/md.png) `tick <img src=http://127.0.0.1:{port}/i.png>"
        f" [l](http://127.0.0.1:{port}/l)"
    )
    ada = store.create_user("ada", PASSWORD, is_admin=True)
    bob = store.create_user("bob", PASSWORD)
    shared = make_run(store, bob, "digits-smoke", name=hostile, visibility="team")
    store.set_notes(shared.id, hostile, viewer=bob)
    private = make_run(store, bob, "digits-smoke", name="bob private")
    link = store.create_share_link([shared.id], viewer=ada, title=hostile)
    store.engine.dispose()
    ui, url = start_dashboard(free_port, env, tmp_path / "streamlit.log", timeout=120)
    try:
        yield {"url": url, "shared": shared, "private": private, "link": link}
    finally:
        stop(ui)


def _settle(page) -> None:
    page.wait_for_timeout(1500)
    deadline = time.time() + 20
    while time.time() < deadline and page.locator('[data-testid="stSpinner"]').count():
        page.wait_for_timeout(200)
    page.wait_for_timeout(1500)


def test_hostile_names_cookies_and_media(team_lab, browser, listener) -> None:
    url = team_lab["url"]
    context, page = sign_in(browser, f"{url}/", "ada", PASSWORD, timeout_s=40)
    cookie = session_cookie(context)
    assert cookie and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert "difflab_session" not in page.evaluate("document.cookie")  # no script can read it
    port = f":{listener.server_address[1]}/"
    leaks: list[str] = []
    page.on("request", lambda r: leaks.append(r.url) if port in r.url else None)
    for path in PAGES:
        page.goto(f"{url}/{path.format(run=team_lab['shared'].id)}")
        _settle(page)
        assert page.locator('[data-testid="stException"]').count() == 0, path
        assert "Page not found" not in page.inner_text("body"), path  # e.g. /runs, the default
    moved = context.request.get(f"{url}/runs?cols=train.lr&sort=name", max_redirects=0)
    assert moved.status == 307 and moved.headers["location"] == "./?cols=train.lr&sort=name"
    page.goto(f"{url}/shared?token={team_lab['link'].token}")
    _settle(page)
    assert "tick" in page.inner_text("body")  # the name is shown, as text
    assert leaks == [] and listener.hits == [], (leaks, listener.hits)

    # an admin opens a private run (the Team page says "only you and admins"); its samples
    # are served to her session and to nobody without one
    page.goto(f"{url}/run?id={team_lab['private'].id}&view=Samples")  # samples: a lazy view
    _settle(page)
    assert "bob private" in page.inner_text("body")
    media: list[str] = []
    deadline = time.time() + 40
    while time.time() < deadline and not media:
        page.wait_for_timeout(500)
        media = [
            src
            for src in page.eval_on_selector_all("img", "els => els.map(e => e.src)")
            if "/media/" in src
        ]
    assert media, "the run page shows its samples"
    assert context.request.get(media[0]).status == 200
    anonymous = browser.new_context()
    assert anonymous.request.get(media[0]).status == 404

    # sign out: the captured cookie no longer signs in
    page.goto(f"{url}/team")
    _settle(page)
    page.get_by_role("button", name="Sign out", exact=True).click()
    deadline = time.time() + 40  # the page sends the browser to /auth/signout
    while time.time() < deadline and session_cookie(context) is not None:
        page.wait_for_timeout(200)
    assert session_cookie(context) is None
    replay = browser.new_context()
    replay.add_cookies([cookie])
    again = replay.new_page()
    again.goto(f"{url}/runs")
    _settle(again)
    assert again.get_by_role("button", name="Sign in").count() == 1
    assert replay.request.get(media[0]).status == 404

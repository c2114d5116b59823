"""Shared pieces of the browser tests: the dashboard as a subprocess, and signing in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from difflab.launcher import spawn

ROOT = Path(__file__).resolve().parents[2]
VIEWPORT = {"width": 1280, "height": 800}


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    """Until the dashboard at `url` answers its health check; RuntimeError with the log's tail
    if it exits or does not answer in time."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"streamlit did not answer at {url}:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it has not gone in 15 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def start_dashboard(
    port: int, env: dict[str, str], log: Path, timeout: float = 90
) -> tuple[subprocess.Popen, str]:
    """(process, base URL) of `streamlit run dashboard/server.py` on 127.0.0.1:`port`, once it
    answers; its output goes to `log`."""
    argv = [sys.executable, "-m", "streamlit", "run", "dashboard/server.py"]
    argv += ["--server.port", str(port), "--server.headless", "true"]
    argv += ["--server.address", "127.0.0.1", "--server.fileWatcherType", "none"]
    argv += ["--browser.gatherUsageStats", "false"]
    proc = spawn(argv, log, env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url, proc, log, timeout)
    except BaseException:
        stop(proc)
        raise
    return proc, url


def session_cookie(context) -> dict | None:  # noqa: ANN001 (a playwright BrowserContext)
    return next((c for c in context.cookies() if c["name"] == "difflab_session"), None)


def sign_in(browser, url: str, user: str, password: str, timeout_s: float = 30):  # noqa: ANN001, ANN201
    """(context, page) of a new browser context signed in through the form at `url`, once the
    server has set the session cookie (an HttpOnly cookie, set at /auth/complete)."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(timeout_s * 1000)
    page.goto(url)
    page.get_by_role("textbox", name="Username").fill(user)
    page.get_by_role("textbox", name="Password").fill(password)
    # Signing in sends the browser through /auth/complete (which sets the cookie) back to the
    # page: wait for that new document's load event, not just the cookie, or the caller's
    # next call can land while the old page is being replaced ("Execution context was
    # destroyed", seen in CI).
    with page.expect_event("load", timeout=timeout_s * 1000):
        page.get_by_role("button", name="Sign in").click()
    assert session_cookie(context) is not None, f"{user} signed in but no session cookie was set"
    return context, page

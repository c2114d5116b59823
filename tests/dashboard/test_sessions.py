"""Disconnected browser sessions do not pile up in the dashboard's memory (issue 14): a session
that leaves the reconnect store (evicted or expired) is shut down, which releases its images,
and the store keeps at most RECONNECT_SESSIONS.

The last test runs the real server (`streamlit run dashboard/server.py`) and talks to it the
way a browser does (Streamlit's websocket), without a browser."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from streamlit.runtime.memory_session_storage import MemorySessionStorage
from streamlit.runtime.session_manager import SessionInfo

from dashboard import sessions

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class _Session:
    """What the storage needs of an AppSession: its id, and shutdown()."""

    id: str
    shut: list[str] = field(default_factory=list)

    def shutdown(self) -> None:
        self.shut.append(self.id)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _info(sid: str, shut: list[str]) -> SessionInfo:
    return SessionInfo(client=None, session=_Session(sid, shut), script_run_count=1)


def test_evicted_and_expired_sessions_are_shut_down_a_resumed_one_is_not():
    shut: list[str] = []
    clock = _Clock()
    storage = sessions.ClosingSessionStorage(maxsize=2, ttl_seconds=10, timer=clock)
    for sid in ("a", "b", "c"):  # the third pushes the least recently used out
        storage.save(_info(sid, shut))
    assert shut == ["a"]
    assert {i.session.id for i in storage.list()} == {"b", "c"}
    storage.delete("c")  # a reconnect takes its session back: it lives on
    assert shut == ["a"]
    clock.now = 11.0  # b's time is up; the next write reaps it
    storage.save(_info("d", shut))
    assert shut == ["a", "b"]
    clock.now = 30.0
    storage.reap()
    assert shut == ["a", "b", "d"] and storage.list() == []


def test_streamlits_own_storage_drops_sessions_without_shutting_them_down():
    """Why the class exists: the plain store forgets an evicted session (its images stay in
    the media store for good). If Streamlit starts shutting them down, this fails and the
    dashboard's class can go."""
    shut: list[str] = []
    plain = MemorySessionStorage(maxsize=1, ttl_seconds=10)
    plain.save(_info("a", shut))
    plain.save(_info("b", shut))
    assert [i.session.id for i in plain.list()] == ["b"] and shut == []


def test_bad_bounds_are_refused():
    with pytest.raises(ValueError, match="maxsize"):
        sessions.ClosingSessionStorage(maxsize=0)


def test_the_dashboard_server_is_still_found_and_uses_the_closing_storage():
    """`streamlit run dashboard/server.py` finds the ASGI app by reading the file (an
    `app = App(...)` call); the runtime it creates keeps sessions in ClosingSessionStorage."""
    from streamlit.web.server.app_discovery import discover_asgi_app

    found = discover_asgi_app(ROOT / "dashboard" / "server.py")
    assert found.is_asgi_app and found.app_name == "app"
    code = (
        "from dashboard.server import app\n"
        "rt = app._create_runtime()\n"
        "s = rt._session_mgr._session_storage\n"
        "print(type(s).__name__, s._cache.maxsize)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,  # importing Streamlit takes a minute on a loaded 2-core machine
        check=True,
    )
    assert out.stdout.split() == ["ClosingSessionStorage", str(sessions.RECONNECT_SESSIONS)]


MEDIA = re.compile(rb"/media/[0-9a-f]{16,}\.(?:png|jpg|jpeg|webp)")


def _visit(port: int, page: str) -> bytes:
    """Open `page` in a new session as a browser would, until its script has finished; the
    messages' bytes."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    got = b""
    url = f"ws://127.0.0.1:{port}/_stcore/stream"
    with connect(url, subprotocols=["streamlit"], max_size=None, open_timeout=60) as ws:
        msg = BackMsg()
        msg.rerun_script.page_name = page
        ws.send(msg.SerializeToString())
        while True:
            raw = ws.recv(timeout=120)
            got += raw
            fwd = ForwardMsg()
            fwd.ParseFromString(raw)
            if fwd.WhichOneof("type") == "script_finished":
                return got


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_real_server_keeps_at_most_the_bound_of_gone_sessions(store, tmp_path):
    """With room for 2 gone sessions, a gallery session's images are released once 2 later
    page loads have come and gone, long before the reconnect time (120 s) is up. With
    Streamlit's store (128 sessions) the image is still served."""
    sys.path.insert(0, str(ROOT / "tests" / "e2e"))
    from e2e_helpers import start_dashboard, stop
    from lab_seed import KINDS, seed_run

    from benchmarks.speed_lab import free_port

    seed_run(store, store.local_user(), KINDS[2], "DONE", tmp_path)  # a gallery of images
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIFFLAB_RECONNECT_SESSIONS": "2"}
    port = free_port()
    proc, base = start_dashboard(port, env, tmp_path / "dashboard.log", timeout=300)
    try:
        urls = MEDIA.findall(_visit(port, "gallery"))
        assert urls, "the gallery page showed no image"
        image = base + urls[0].decode()
        _visit(port, "team")
        assert _status(image) == 200  # gone, but kept for a reconnect
        _visit(port, "status")  # the third gone session: the gallery's is the oldest
        assert _status(image) == 404, "an evicted session's image is still held"
    finally:
        stop(proc)


def test_every_dashboard_cache_is_bounded():
    """Each st.cache_resource / st.cache_data function of the dashboard has max_entries (and
    the figure caches a time to live): nothing the pages cache grows with use."""
    import importlib
    import pkgutil

    from streamlit.runtime.caching.cache_utils import CachedFunc

    import dashboard
    from dashboard import runfigures

    cached = {}
    for mod in pkgutil.iter_modules(dashboard.__path__):
        if mod.name in ("app", "server"):  # entry files: they run the app when imported
            continue
        module = importlib.import_module(f"dashboard.{mod.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, CachedFunc) and obj._info.func.__module__ == module.__name__:
                cached[f"{mod.name}.{name}"] = obj._info
    assert "runfigures._bound_figures" in cached and "services._store_for" in cached
    for name, info in cached.items():
        assert info.max_entries is not None and info.max_entries <= 64, name
    for name in ("_bound_figures", "_cloud_figure", "_sequences_figure", "_trajectory_figure"):
        assert cached[f"runfigures.{name}"].ttl == runfigures.CACHE_SECONDS, name

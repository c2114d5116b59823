"""Where the dashboard keeps browser sessions that have gone away, and how many.

Every page load in a browser is a new Streamlit session. When its websocket closes (the next
page load, a closed tab) Streamlit keeps the whole session (its page's messages, widgets,
session state, and the images it showed, which stay in Streamlit's media store) for
`server.disconnectedSessionTTL` seconds (120 by default) so that a network blip can resume
it, in an LRU store of up to 128 sessions (`MemorySessionStorage`).

That store was the dashboard's memory growth in issue 14's measurement (every page opened 50
times, +9.4% over the first round): a page load every second or so fills it to ~120 sessions
within two minutes, each holding what its page drew. It is bounded, so the growth plateaus,
but at far more than a lab needs: a resumed session only saves re-running one page, and
sign-in survives a reload anyway (an HttpOnly cookie in team mode).

`ClosingSessionStorage` keeps at most `DIFFLAB_RECONNECT_SESSIONS` (default 32) and shuts a
session down as soon as it is evicted or its time is up (releasing its images and lazy tables
at once; Streamlit's own store drops it and leaves the release to the garbage collector,
`AppSession.__del__`, which a reference cycle can postpone). A reconnect that takes its session
back is a plain delete and leaves the session alone. `dashboard/server.py` has the runtime it
creates use it (`use_closing_storage`).
"""

from __future__ import annotations

import logging
from typing import Any

from streamlit.runtime.caching.ttl_cache import TTLCache
from streamlit.runtime.memory_session_storage import MemorySessionStorage

from diffusion import settings

LOG = logging.getLogger(__name__)

# Disconnected sessions kept for a reconnect (DIFFLAB_RECONNECT_SESSIONS): a reconnect only
# matters for a network blip of an open tab, and 32 covers a team's tabs blipping at once.
RECONNECT_SESSIONS = settings.DEFAULT_RECONNECT_SESSIONS


def _shut_down(info: Any) -> None:
    session = getattr(info, "session", None)
    if session is None:
        return
    try:
        session.shutdown()
    except Exception:  # noqa: BLE001 - one session's clean-up must not stop the others'
        LOG.exception("shutting down an evicted session failed")


class _ClosingTTLCache(TTLCache):
    """A TTLCache of SessionInfo that shuts down what it evicts or lets expire; an explicit
    `del` (a reconnect resuming the session) leaves the session alone."""

    def expire(self, at_time: float | None = None) -> list:
        removed = super().expire(at_time)
        for _key, info in removed:
            _shut_down(info)
        return removed

    def _evict_lru(self, reason: Any) -> Any:
        info = super()._evict_lru(reason)
        _shut_down(info)
        return info


class ClosingSessionStorage(MemorySessionStorage):
    """Streamlit's in-memory session storage, with evicted and expired sessions shut down."""

    def __init__(
        self, maxsize: int = RECONNECT_SESSIONS, ttl_seconds: float = 120, timer=None
    ) -> None:
        if maxsize < 1 or ttl_seconds <= 0:
            raise ValueError(
                f"maxsize must be >= 1 and ttl_seconds > 0 (got {maxsize}, {ttl_seconds})"
            )
        super().__init__(maxsize=maxsize, ttl_seconds=int(ttl_seconds))
        kwargs = {} if timer is None else {"timer": timer}
        self._cache = _ClosingTTLCache(maxsize=maxsize, ttl=ttl_seconds, **kwargs)

    def reap(self) -> None:
        """Shut down every session whose time is up (writes do this anyway)."""
        self._cache.expire()


def install(runtime: Any, *, maxsize: int | None = None) -> ClosingSessionStorage:
    """Put a ClosingSessionStorage (same TTL as configured) into a runtime that has no
    sessions yet. Raises RuntimeError if this Streamlit keeps sessions elsewhere (then the
    dashboard's memory is not bounded, and the test of this module says so)."""
    from streamlit import config

    manager = getattr(runtime, "_session_mgr", None)
    old = getattr(manager, "_session_storage", None)
    if not isinstance(old, MemorySessionStorage):
        raise RuntimeError(f"no in-memory session storage to replace in {type(runtime).__name__}")
    if old.list():
        raise RuntimeError("the session storage is replaced before any session exists")
    storage = ClosingSessionStorage(
        maxsize=settings.reconnect_sessions() if maxsize is None else maxsize,
        ttl_seconds=config.get_option("server.disconnectedSessionTTL"),
    )
    manager._session_storage = storage
    return storage


def use_closing_storage(app: Any, *, maxsize: int | None = None) -> None:
    """Have a `streamlit.starlette.App` put a ClosingSessionStorage into its runtime when it
    creates it (before the server starts; Streamlit creates the runtime lazily)."""
    create = app._create_runtime

    def create_runtime() -> Any:
        runtime = create()
        install(runtime, maxsize=maxsize)
        return runtime

    app._create_runtime = create_runtime

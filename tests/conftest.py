"""Fixtures shared by every test package.

- `free_port`: a TCP port free on 127.0.0.1 now.
- `data_dir`: an empty data folder, with `DIFFLAB_DATA_DIR` pointing at it (and the database
  and artifact variables cleared, so the SQLite default in that folder is used).
- `redis_url`: a Redis database of its own on the machine's Redis (127.0.0.1:6379 or
  `DIFFLAB_TEST_REDIS_URL`), flushed before and after. Database numbers are leased with a key
  in db 0, so that concurrent test sessions on one machine never share one.
- `postgres_url`: a fresh PostgreSQL database on 127.0.0.1:5432 (or `DIFFLAB_TEST_POSTGRES_URL`,
  an admin URL), dropped afterwards.
The service fixtures skip with a reason where the service is unreachable, except under CI
(`CI` set), where an unreachable service is a failure.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_BASE_URL = os.environ.get("DIFFLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379")
POSTGRES_ADMIN_URL = os.environ.get(
    "DIFFLAB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_DBS = range(1, 16)  # db 0 holds the leases
LEASE_S = 1800


def _unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable ({exc.__class__.__name__}: {exc})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; .ci/run starts it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def _private_config_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The dashboard's default signing key goes under XDG_CONFIG_HOME: a temporary one."""
    saved = os.environ.get("XDG_CONFIG_HOME")
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    yield
    if saved is None:
        os.environ.pop("XDG_CONFIG_HOME", None)
    else:
        os.environ["XDG_CONFIG_HOME"] = saved


@pytest.fixture
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("DIFFLAB_DATA_DIR", str(path))
    for name in ("DIFFLAB_DATABASE_URL", "DIFFLAB_ARTIFACT_DIR", "DIFFLAB_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    return path


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    admin = redis.Redis.from_url(f"{REDIS_BASE_URL}/0", socket_connect_timeout=2)
    try:
        admin.ping()
    except (redis.RedisError, OSError) as exc:
        _unavailable(f"Redis at {REDIS_BASE_URL}", exc)
    token = uuid.uuid4().hex
    db = _lease_redis_db(admin, token)
    url = f"{REDIS_BASE_URL}/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()
        if admin.get(f"difflab-test-lease:{db}") == token.encode():
            admin.delete(f"difflab-test-lease:{db}")
        admin.close()


def _lease_redis_db(admin: object, token: str) -> int:
    for db in REDIS_DBS:
        if admin.set(f"difflab-test-lease:{db}", token, nx=True, ex=LEASE_S):  # type: ignore[attr-defined]
            return db
    pytest.fail("every Redis test database (1-15) is leased by another test session")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    import psycopg

    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        _unavailable(f"PostgreSQL at {POSTGRES_ADMIN_URL}", exc)
    name = f"difflab_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        try:
            yield f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

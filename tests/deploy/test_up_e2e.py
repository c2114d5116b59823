"""`difflab up` end to end: the real embedded Redis, migration, worker and dashboard.

On free ports in a temporary data folder:
1. `difflab up --workers 0`: the dashboard's health endpoint answers; a smoke run submitted
   with `difflab submit` stays QUEUED; SIGINT stops everything (exit 0).
2. `difflab up` (one worker): the worker announces itself, the message queued in step 1 was
   kept by Redis's append-only file and the run reaches DONE, with artifacts; SIGINT stops
   everything.
3. `difflab up` again: the run is still DONE and its artifacts are there, byte for byte.
(The worker's device is set to cpu, which skips its few seconds of device detection.)
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from difflab import services

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
PRESET = "swissroll-smoke"
OVERRIDES = ("train.steps=20", "train.eval_every=10", "train.eval_examples=100")
START_TIMEOUT_S = 240
DONE_TIMEOUT_S = 240


def _missing_parts() -> str | None:
    from difflab.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    wanted = ("up", "worker", "submit", "show", "db")
    absent = [c for c in wanted if c not in commands]
    if absent:
        return f"`difflab {'/'.join(absent)}` not built yet"
    if not (ROOT / "dashboard" / "app.py").is_file():
        return "dashboard/app.py not built yet"
    return None


@pytest.fixture
def lab_env(tmp_path: Path) -> dict[str, str]:
    missing = _missing_parts()
    if missing:
        pytest.skip(f"difflab up needs every part: {missing}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFLAB_")}
    env.update(
        DIFFLAB_DATA_DIR=str(tmp_path / "data"),
        DIFFLAB_REDIS_URL=services.redis_url(services.free_port()),
        DIFFLAB_LEASE_S="20",
        DIFFLAB_WORKER_DEVICE="cpu",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextmanager
def lab(env: dict[str, str], log: Path, *, workers: int) -> Iterator[int]:
    """`difflab up` running; yields the dashboard port; stops it with SIGINT at the end."""
    port = services.free_port()
    redis_port = env["DIFFLAB_REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
    argv = [sys.executable, "-m", "difflab", "up", "--data-dir", env["DIFFLAB_DATA_DIR"]]
    argv += ["--port", str(port), "--redis-port", redis_port, "--workers", str(workers)]
    up_env = {k: v for k, v in env.items() if k != "DIFFLAB_REDIS_URL"}  # embedded Redis
    with log.open("w") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=up_env, stdout=out, stderr=out)
    try:
        _wait_for(lambda: "difflab up: running" in log.read_text(), process, log, "start")
        yield port
    finally:
        stopped = _interrupt(process)
    text = log.read_text()
    assert stopped == 0, f"difflab up exited with {stopped} after SIGINT:\n{text}"
    assert "difflab up: stopped" in text


def _interrupt(process: subprocess.Popen) -> int | None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        return None


def _wait_for(ready, process: subprocess.Popen, log: Path, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        if process.poll() is not None:
            pytest.fail(
                f"difflab up exited ({process.returncode}) before {what}:\n{log.read_text()}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"difflab up: no {what} within {START_TIMEOUT_S} s:\n{log.read_text()}")
        time.sleep(0.5)


def difflab(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "difflab", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"difflab {' '.join(args)}: {done.stderr}"
    return done.stdout


def submit(env: dict[str, str]) -> str:
    sets = [arg for override in OVERRIDES for arg in ("--set", override)]
    run_id = difflab(env, "submit", PRESET, *sets).strip().splitlines()[-1].strip()
    assert run_id and " " not in run_id
    return run_id


def show(env: dict[str, str], run_id: str) -> dict:
    return json.loads(difflab(env, "show", run_id, "--json"))


def wait_until_done(env: dict[str, str], run_id: str) -> dict:
    deadline = time.monotonic() + DONE_TIMEOUT_S
    while True:
        run = show(env, run_id)
        if run["state"] in ("DONE", "FAILED", "CANCELLED"):
            assert run["state"] == "DONE", run
            return run
        assert time.monotonic() < deadline, f"run {run_id} not DONE in time: {run}"
        time.sleep(1)


def artifacts(env: dict[str, str], run_id: str) -> dict[str, str]:
    """key -> sha256 of the bytes read back from the artifact store."""
    from db.access import SYSTEM
    from db.store import Store

    store = Store(
        f"sqlite:///{Path(env['DIFFLAB_DATA_DIR']) / 'difflab.db'}",
        artifact_root=Path(env["DIFFLAB_DATA_DIR"]) / "artifacts",
    )
    try:
        found = {}
        for art in store.list_artifacts(run_id, viewer=SYSTEM):
            data = store.artifact_bytes(art, viewer=SYSTEM)
            assert hashlib.sha256(data).hexdigest() == art.sha256
            found[f"{art.kind}:{art.key}"] = art.sha256
        return found
    finally:
        store.engine.dispose()


def health(port: int) -> str:
    url = f"http://127.0.0.1:{port}/_stcore/health"
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def test_up_runs_a_job_and_keeps_it_across_restarts(
    lab_env: dict[str, str], tmp_path: Path
) -> None:
    data = Path(lab_env["DIFFLAB_DATA_DIR"])

    with lab(lab_env, tmp_path / "up-1.log", workers=0) as port:
        assert health(port) == "ok"
        queued = submit(lab_env)
        assert show(lab_env, queued)["state"] == "QUEUED"
    first = (tmp_path / "up-1.log").read_text()
    assert f"data folder {data}" in first and "redis      redis://127.0.0.1:" in first
    assert (data / "redis" / "appendonly.aof").exists()

    with lab(lab_env, tmp_path / "up-2.log", workers=1) as port:
        assert health(port) == "ok"
        done = wait_until_done(lab_env, queued)
        kept = artifacts(lab_env, queued)
    log = (tmp_path / "up-2.log").read_text()
    assert "worker-1   ready (on cpu" in log, log
    assert "stopping worker-1" in log and "stopping redis" in log
    assert kept, "the run recorded no artifacts"
    assert done["final_bound_bits"] is not None

    with lab(lab_env, tmp_path / "up-3.log", workers=0) as port:
        assert health(port) == "ok"
        after = show(lab_env, queued)
        assert after["state"] == "DONE"
        assert after["final_bound_bits"] == done["final_bound_bits"]
        assert artifacts(lab_env, queued) == kept


def test_up_stops_everything_and_says_which_part_died(
    lab_env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "up.log"
    argv = [sys.executable, "-m", "difflab", "up", "--data-dir", lab_env["DIFFLAB_DATA_DIR"]]
    argv += ["--port", str(services.free_port()), "--workers", "0"]
    up_env = {k: v for k, v in lab_env.items() if k != "DIFFLAB_REDIS_URL"}
    with log.open("w") as out:
        process = subprocess.Popen(argv, cwd=ROOT, env=up_env, stdout=out, stderr=out)
    try:
        _wait_for(lambda: "difflab up: running" in log.read_text(), process, log, "start")
        text = log.read_text()
        dashboard_pid = int(text.split("dashboard  http://")[1].split("(pid ")[1].split(")")[0])
        redis_pid = int(text.split("redis      redis://")[1].split(", pid ")[1].split(")")[0])
        os.kill(dashboard_pid, signal.SIGKILL)
        assert process.wait(timeout=60) == 1
    finally:
        _interrupt(process)
    text = log.read_text()
    assert f"dashboard (pid {dashboard_pid}) was killed by signal 9" in text
    assert "stopping redis" in text and "difflab up: stopped" in text
    with pytest.raises(ProcessLookupError):
        os.kill(redis_pid, 0)

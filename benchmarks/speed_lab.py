"""A whole lab for the speed benchmark: `difflab up` (embedded Redis, SQLite, workers, the
dashboard) in a fresh data folder, stopped on exit."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.speed_common import environ

ROOT = Path(__file__).resolve().parent.parent
READY = "difflab up: running"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Lab:
    """`with Lab(workers=1) as lab:` sets DIFFLAB_DATA_DIR / DIFFLAB_REDIS_URL in this process
    (for the store and the enqueue API) while the lab runs."""

    def __init__(self, *, workers: int = 1, data_dir: Path | None = None, timeout_s: float = 300):
        self.workers, self.timeout_s = workers, timeout_s
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="difflab-speed-")
        self.data_dir = Path(data_dir or self._tmp.name)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = self.data_dir / "up.log"
        self._environ: contextlib.AbstractContextManager | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFLAB_")}
        env.update(
            DIFFLAB_DATA_DIR=str(self.data_dir),
            DIFFLAB_WORKER_DEVICE="cpu",
            DIFFLAB_TORCH_THREADS="1",  # the same as the `difflab train` baseline
            OMP_NUM_THREADS="1",
            PYTHONPATH=str(ROOT),
        )
        return env

    def __enter__(self) -> Lab:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "difflab",
            "up",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--redis-port",
            str(free_port()),
        ]
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env(),
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.timeout_s
        while READY not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                text = self.log.read_text()[-3000:]
                self.__exit__(None, None, None)
                raise RuntimeError(f"difflab up did not start:\n{text}")
            time.sleep(0.2)
        redis = re.search(r"DIFFLAB_REDIS_URL=(\S+)", self._wait_for("DIFFLAB_REDIS_URL="))
        self._environ = environ(
            DIFFLAB_DATA_DIR=str(self.data_dir),
            DIFFLAB_REDIS_URL=redis.group(1),
            DIFFLAB_DATABASE_URL=None,
            DIFFLAB_ARTIFACT_DIR=None,
        )
        self._environ.__enter__()
        return self

    def _wait_for(self, text: str) -> str:
        deadline = time.monotonic() + 30
        while text not in (log := self.log.read_text()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no {text!r} in the lab's output:\n{log[-2000:]}")
            time.sleep(0.1)
        return log

    def worker_pids(self) -> list[int]:
        """The pids of the worker processes (main and pool children)."""
        import psutil

        out = []
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if "worker" in " ".join(child.cmdline()):
                    out.append(child.pid)
            except psutil.Error:
                continue
        return out

    def dashboard_pid(self) -> int | None:
        import psutil

        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if "streamlit" in " ".join(child.cmdline()):
                    return child.pid
            except psutil.Error:
                continue
        return None

    def __exit__(self, *exc: object) -> None:
        if self._environ is not None:
            self._environ.__exit__(None, None, None)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._tmp is not None:
            self._tmp.cleanup()

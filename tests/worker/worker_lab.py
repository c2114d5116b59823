"""Helpers for the worker tests: `difflab worker` subprocesses on a Redis db of their own,
the CLI as a subprocess, the store (SQLite in a fresh data folder) read directly."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from db.access import SYSTEM
from db.entities import Run
from db.store import Store
from difflab.launcher import spawn

ROOT = Path(__file__).resolve().parents[2]
FAST_ENV = {
    "DIFFLAB_WORKER_DEVICE": "cpu",
    "DIFFLAB_LEASE_S": "3",
    "DIFFLAB_RECONCILE_S": "1",
    "DIFFLAB_RECONCILE_GRACE_S": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class Lab:
    def __init__(self, data_dir: Path, redis_url: str, env: dict[str, str]) -> None:
        self.data_dir, self.redis_url, self.env = data_dir, redis_url, env
        self.workers: list[subprocess.Popen[bytes]] = []
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.from_env()
        return self._store

    def cli(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "difflab", *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"difflab {' '.join(args)} failed: {result.stderr}")
        return result

    def submit(self, *sets: str) -> str:
        args = ["submit", "swissroll-smoke"]
        for s in sets:
            args += ["--set", s]
        return self.cli(*args).stdout.strip()

    def start_worker(self, name: str = "w") -> subprocess.Popen[bytes]:
        log = self.data_dir / f"worker-{name}-{len(self.workers)}.log"
        proc = spawn([sys.executable, "-m", "difflab", "worker"], log, self.env, cwd=ROOT)
        self.workers.append(proc)
        return proc

    def kill9(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its pool children at once (a lost node)."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=15)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)

    def run(self, run_id: str) -> Run:
        return self.store.get_run(run_id, viewer=SYSTEM)

    def wait_for(
        self, what: str, fn: Callable[[], Any], timeout: float = 90, every: float = 0.1
    ) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = fn()
            if value:
                return value
            if self.workers and all(p.poll() is not None for p in self.workers):
                raise AssertionError(
                    f"every worker exited while waiting for {what}:\n{self.logs()}"
                )
            time.sleep(every)
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what}; worker logs:\n{self.logs()}"
        )

    def wait_state(self, run_id: str, *states: str, timeout: float = 90) -> Run:
        return self.wait_for(
            f"run {run_id} in {states}",
            lambda: (r := self.run(run_id)).state in states and r,
            timeout=timeout,
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-3000:]}"
            for p in sorted(self.data_dir.glob("worker-*.log"))
        )


def report(line: str) -> None:
    """A measurement for the closing note: printed, and appended to a file in the temp folder."""
    print(line)
    with open(Path(tempfile.gettempdir()) / "difflab-worker-measurements.txt", "a") as fh:
        fh.write(f"{time.strftime('%H:%M:%S')} {line}\n")

"""Per-process state of a worker: its store, identity, device, lease settings, and the
background threads of the main process (heartbeat, reconciler).

Environment (read by diffusion.settings):
  DIFFLAB_LEASE_S        a job's lease, kept alive by a heartbeat every third of it (default 9):
                         a worker that stops heartbeating (kill -9, a lost node) has its run
                         re-sent within about this long, and trained again seconds later
  DIFFLAB_RECONCILE_S    how often the reconciler runs in each worker (default 2)
  DIFFLAB_RECONCILE_GRACE_S  a QUEUED job absent from the broker this long after it was
                         sent is re-sent (default 10)
  DIFFLAB_WORKER_DEVICE  skip detection and use this device (cpu, cuda, cuda:1, mps)
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from db.store import Store
from diffusion import settings

log = logging.getLogger("difflab.worker")

_store: Store | None = None
_store_pid: int | None = None


lease_s = settings.lease_s
reconcile_s = settings.reconcile_s
reconcile_grace_s = settings.reconcile_grace_s


def host() -> str:
    return socket.gethostname()


def get_store() -> Store:
    """This process's store (a forked child makes its own engine, never shares sockets)."""
    global _store, _store_pid
    if _store is None or _store_pid != os.getpid():
        if _store is not None:
            _store.engine.dispose(close=False)
        _store, _store_pid = Store.from_env(), os.getpid()
    return _store


def detect_device() -> str:
    """cuda, else cpu; probed in a subprocess so the parent never initialises CUDA
    before forking. `DIFFLAB_WORKER_DEVICE` overrides."""
    forced = settings.worker_device()
    if forced:
        return forced
    code = "from diffusion.device import pick_device; print(pick_device('auto'))"
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
        )
        return out.stdout.strip().splitlines()[-1] or "cpu"
    except (subprocess.SubprocessError, OSError, IndexError):
        return "cpu"


def device() -> str:
    """The device this worker announced (set by `difflab worker` in the environment)."""
    return settings.worker_device() or "cpu"


def device_info(dev: str) -> dict:
    """What the Status page shows of a device: its name, and for a GPU the memory in use and
    the total in MiB (from nvidia-smi, so this process never initialises CUDA)."""
    if dev.startswith("cuda"):
        index = dev.split(":", 1)[1] if ":" in dev else "0"
        query = "--query-gpu=name,memory.used,memory.total"
        try:
            out = subprocess.run(
                ["nvidia-smi", query, "--format=csv,noheader,nounits", "-i", index],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
            name, used, total = (part.strip() for part in out.splitlines()[0].rsplit(",", 2))
            return {"name": name, "memory_used_mib": int(used), "memory_total_mib": int(total)}
        except (subprocess.SubprocessError, OSError, ValueError, IndexError) as exc:
            return {"name": f"{dev} (nvidia-smi failed: {type(exc).__name__})"}
    import platform

    return {"name": f"CPU, {os.cpu_count() or '?'} cores ({platform.machine()})"}


def _stop_flag(worker_pid: int) -> Path:
    return settings.data_dir() / "workers" / f"{runtime_host_safe()}-{worker_pid}.stopping"


def runtime_host_safe() -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in host())


def mark_stopping(worker_pid: int, on: bool = True) -> None:
    """Tell this worker's pool children to hand their jobs back (warm shutdown)."""
    flag = _stop_flag(worker_pid)
    if on:
        flag.parent.mkdir(parents=True, exist_ok=True)
        flag.touch()
    else:
        flag.unlink(missing_ok=True)


def stopping(worker_pid: int) -> bool:
    return _stop_flag(worker_pid).exists()


class Ticker(threading.Thread):
    """Call `fn` every `interval` seconds until stopped (errors are logged, not raised)."""

    def __init__(self, name: str, interval: float, fn: object) -> None:
        super().__init__(name=name, daemon=True)
        self.interval, self.fn = interval, fn
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.fn()  # type: ignore[operator]
            except Exception:
                log.exception("%s failed", self.name)
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()

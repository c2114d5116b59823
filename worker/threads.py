"""Torch's intra-op threads from a worker's share of the cores.

A worker process running `--concurrency c` jobs on a machine (or container) with n usable
cores gives each job floor(n / c) threads (at least one), so that c jobs never run more
threads than there are cores: oversubscribed, torch's spinning threads cost several times
the CPU for no gain (issue 14: 600 steps took 222 s of wall time and 116 s of CPU, against
100 s and 13 s with one thread).

The usable cores are the fewest of: the CPUs this process may run on
(`os.sched_getaffinity`), and the CFS quota of its cgroup (v2 `cpu.max`, v1
`cpu.cfs_quota_us / cpu.cfs_period_us`, the tightest along the cgroup's path), rounded down,
at least one. `DIFFLAB_TORCH_THREADS`, else `OMP_NUM_THREADS`, overrides the count.
Torch-free but for `apply()`.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from diffusion import settings

log = logging.getLogger("difflab.worker")
CGROUP_ROOT = Path("/sys/fs/cgroup")
_applied: int | None = None


def _quota_v2(text: str) -> float | None:
    """cpu.max holds "max 100000" (no limit) or "QUOTA PERIOD" in microseconds."""
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    quota, period = float(parts[0]), float(parts[1])
    return quota / period if quota > 0 and period > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_paths(proc_cgroup: str) -> tuple[str | None, str | None]:
    """(v2 path, v1 cpu-controller path) of this process, from /proc/self/cgroup."""
    v2 = v1 = None
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1 = path
    return v2, v1


def _ancestors(path: str) -> list[str]:
    """'/a/b' -> ['/a/b', '/a', '/']"""
    out, p = [], path.rstrip("/") or "/"
    while True:
        out.append(p)
        if p == "/":
            return out
        p = p.rsplit("/", 1)[0] or "/"


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: str | None = None) -> float | None:
    """The CPU quota (in cores) of this process's cgroup, the tightest along its path; None
    where there is none or it cannot be read."""
    if proc_cgroup is None:
        proc_cgroup = _read(Path("/proc/self/cgroup")) or ""
    v2, v1 = _cgroup_paths(proc_cgroup)
    limits: list[float] = []
    if v2 is not None:
        for p in _ancestors(v2):
            text = _read(root / p.lstrip("/") / "cpu.max")
            quota = _quota_v2(text) if text else None
            if quota is not None:
                limits.append(quota)
    for base in (root / "cpu", root / "cpu,cpuacct"):
        if v1 is None or not base.is_dir():
            continue
        for p in _ancestors(v1):
            folder = base / p.lstrip("/")
            quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
            if quota and period and float(quota) > 0 and float(period) > 0:
                limits.append(float(quota) / float(period))
        break
    return min(limits) if limits else None


def usable_cpus() -> int:
    """Cores this process may use: affinity and cgroup quota, at least 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        n = min(n, max(1, math.floor(quota)))
    return max(1, n)


def threads_per_job(concurrency: int, cpus: int | None = None) -> int:
    """floor(cpus / concurrency), at least 1; `DIFFLAB_TORCH_THREADS`, else `OMP_NUM_THREADS`
    (what the operator asked for), overrides."""
    asked = settings.torch_threads()
    if asked:
        var, forced = asked
        if not forced.isdigit() or int(forced) < 1:
            raise ValueError(f"{var} must be a whole number >= 1, got {forced!r}")
        return int(forced)
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    cpus = usable_cpus() if cpus is None else cpus
    return max(1, cpus // concurrency)


def concurrency() -> int:
    """This worker's --concurrency (set in the environment by `difflab worker`)."""
    return settings.worker_concurrency()


def apply() -> int:
    """Set torch's intra-op threads for this pool process (once); returns the count."""
    global _applied
    n = threads_per_job(concurrency())
    if _applied != n:
        import torch

        from diffusion.device import flush_denormals

        flush_denormals()  # before the pool threads start: they inherit the mode
        torch.set_num_threads(n)
        _applied = n
        log.info(
            "torch intra-op threads: %d (%d usable cores, concurrency %d)",
            n,
            usable_cpus(),
            concurrency(),
        )
    return n

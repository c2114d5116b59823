"""worker/threads.py: torch's threads from the worker's share of the cores (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker import threads


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def test_cgroup_v2_quota_is_the_tightest_along_the_path(tmp_path: Path) -> None:
    _write(tmp_path / "cpu.max", "max 100000")
    _write(tmp_path / "lab" / "cpu.max", "300000 100000")  # 3 cores
    _write(tmp_path / "lab" / "worker" / "cpu.max", "150000 100000")  # 1.5 cores
    limit = threads.cgroup_cpu_limit(tmp_path, "0::/lab/worker\n")
    assert limit == pytest.approx(1.5)
    assert threads.cgroup_cpu_limit(tmp_path, "0::/lab\n") == pytest.approx(3.0)


def test_cgroup_without_a_quota_is_none(tmp_path: Path) -> None:
    _write(tmp_path / "cpu.max", "max 100000")
    assert threads.cgroup_cpu_limit(tmp_path, "0::/\n") is None
    assert threads.cgroup_cpu_limit(tmp_path / "absent", "0::/x\n") is None


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    folder = tmp_path / "cpu" / "docker" / "abc"
    _write(folder / "cpu.cfs_quota_us", "200000")
    _write(folder / "cpu.cfs_period_us", "100000")
    _write(tmp_path / "cpu" / "cpu.cfs_quota_us", "-1")
    _write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000")
    proc = "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n"
    assert threads.cgroup_cpu_limit(tmp_path, proc) == pytest.approx(2.0)


@pytest.fixture(autouse=True)
def _no_thread_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIFFLAB_TORCH_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


def test_threads_per_job_never_oversubscribes() -> None:
    assert threads.threads_per_job(1, cpus=8) == 8
    assert threads.threads_per_job(2, cpus=8) == 4
    assert threads.threads_per_job(3, cpus=8) == 2
    assert threads.threads_per_job(4, cpus=2) == 1  # at least one
    for cpus in range(1, 17):
        for conc in range(1, cpus + 1):
            n = threads.threads_per_job(conc, cpus=cpus)
            assert n >= 1 and n * conc <= cpus
    with pytest.raises(ValueError, match="concurrency"):
        threads.threads_per_job(0, cpus=4)


def test_override_and_usable_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFFLAB_TORCH_THREADS", "3")
    assert threads.threads_per_job(4, cpus=2) == 3
    monkeypatch.setenv("DIFFLAB_TORCH_THREADS", "0")
    with pytest.raises(ValueError, match="DIFFLAB_TORCH_THREADS"):
        threads.threads_per_job(1, cpus=2)
    monkeypatch.delenv("DIFFLAB_TORCH_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the operator's choice stands
    assert threads.threads_per_job(1, cpus=8) == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 2.5)
    assert threads.usable_cpus() == 2
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 0.5)
    assert threads.usable_cpus() == 1
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    assert threads.usable_cpus() == 4


def test_apply_sets_torch_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("DIFFLAB_WORKER_CONCURRENCY", "2")
    monkeypatch.setattr(threads, "usable_cpus", lambda: 4)
    monkeypatch.setattr(threads, "_applied", None)
    try:
        assert threads.apply() == 2
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

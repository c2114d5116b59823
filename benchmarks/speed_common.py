"""Shared pieces of the speed benchmark (benchmarks/speed.py): the measurement record and
interleaved timing that resists the noise of a shared machine.

Every figure is a ratio against a baseline timed in the same process, in alternating blocks
(A B A B ...), so that a burst of load from elsewhere hits both sides alike; the ratio is the
median of the per-block ratios.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field


@dataclass
class Measurement:
    """One line of `speed.py --json`. `ratio` is compared with `target` by `op` (">=" or
    "<="); `figure` and `baseline` are in `unit` (seconds per call unless said)."""

    name: str
    figure: float
    baseline: float
    ratio: float
    target: float
    op: str
    unit: str = "s"
    detail: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        if self.target is None:
            return True
        return self.ratio >= self.target if self.op == ">=" else self.ratio <= self.target

    def to_dict(self) -> dict:
        out = asdict(self)
        out["ok"] = self.ok
        for key in ("figure", "baseline", "ratio"):
            out[key] = round(float(out[key]), 6)
        return out


def memory_growth(name: str, peak: float, start: float, detail: dict) -> Measurement:
    """Peak RSS against the RSS at the start, in MiB: met when it grew by at most 5 %."""
    return Measurement(name, peak, start, peak / start, 1.05, "<=", "MiB", detail)


@contextlib.contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """os.environ with `values` set (None: removed) for the block; each key is put back as it
    was afterwards."""

    def put(settings: dict[str, str | None]) -> None:
        for key, value in settings.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    saved = {key: os.environ.get(key) for key in values}
    try:
        put(values)
        yield
    finally:
        put(saved)


def time_calls(
    fn: Callable[[], object], n: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Seconds per call over n calls (0.0 for n = 0), by `clock` (wall time by default;
    `time.thread_time` counts only this thread's CPU time)."""
    if n <= 0:
        return 0.0
    t0 = clock()
    for _ in range(n):
        fn()
    return (clock() - t0) / n


def interleaved(
    fns: dict[str, Callable[[], object]],
    *,
    calls: int,
    blocks: int,
    warmup: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Per-block seconds per call of each function, the functions taking turns block by block
    (the order rotates so neither side always runs first)."""
    names = list(fns)
    for name in names:
        time_calls(fns[name], warmup, clock)
    out: dict[str, list[float]] = {name: [] for name in names}
    for b in range(blocks):
        order = names if b % 2 == 0 else names[::-1]
        for name in order:
            out[name].append(time_calls(fns[name], calls, clock))
    return out


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median over blocks of num[i] / den[i]."""
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def mean_of_runs(runs: list[list[Measurement]]) -> list[Measurement]:
    """Repeated measurements (each run a list of rows in the same order) as one row each: the
    mean figure, baseline and ratio, the target judged on the mean ratio (a row is met when
    its mean meets it, as for seeds), every run's ratio and their spread in `detail`."""
    if len(runs) == 1:
        return runs[0]
    out = []
    for rows in zip(*runs, strict=True):
        first, ratios = rows[0], [r.ratio for r in rows]
        detail = {
            **{  # numbers that differ between runs (times, sub-ratios): their mean
                key: _mean_if_numbers([r.detail.get(key) for r in rows], value)
                for key, value in first.detail.items()
            },
            "runs": len(rows),
            "run_ratios": [round(r, 4) for r in ratios],
            "ratio_stdev": round(statistics.stdev(ratios), 4),
            "ratio": f"{first.detail.get('ratio', 'ratio')}; mean of {len(rows)} runs",
        }
        out.append(
            Measurement(
                first.name,
                statistics.fmean(r.figure for r in rows),
                statistics.fmean(r.baseline for r in rows),
                statistics.fmean(ratios),
                first.target,
                first.op,
                first.unit,
                detail,
            )
        )
    return out


def _mean_if_numbers(values: list, first):
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return round(statistics.fmean(values), 4) if len(set(values)) > 1 else first
    return first

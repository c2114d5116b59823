"""dashboard/downsample.py: long curves reach the browser short, with their extremes kept."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard import charts
from dashboard.downsample import MAX_POINTS, min_max_last


def _curve(n: int, seed: int = 0) -> tuple[list[int], list[float]]:
    rng = np.random.default_rng(seed)
    ys = np.cumsum(rng.normal(size=n)) + 5 * np.exp(-np.arange(n) / (n / 5))
    ys[n // 3] += 40.0  # a spike a stride would miss
    ys[2 * n // 3] -= 40.0  # and a dip
    return list(range(0, 10 * n, 10)), ys.tolist()


def test_keeps_minima_maxima_and_the_last_point() -> None:
    xs, ys = _curve(50_000)
    dx, dy = min_max_last(xs, ys, 2_000)
    assert len(dx) <= 2_000 and len(dx) == len(dy)
    assert dx == sorted(dx) and len(set(dx)) == len(dx)
    assert (dx[0], dy[0]) == (xs[0], ys[0])
    assert (dx[-1], dy[-1]) == (xs[-1], ys[-1])
    assert min(dy) == min(ys) and max(dy) == max(ys)
    pairs = dict(zip(xs, ys, strict=True))
    assert all(pairs[x] == y for x, y in zip(dx, dy, strict=True))  # real points only


def test_every_slice_keeps_its_envelope() -> None:
    """Brute force: in each of the slices the helper cuts, its min and max are kept."""
    xs, ys = _curve(10_001, seed=3)
    max_points = 202
    _, dy = min_max_last(xs, ys, max_points)
    edges = np.linspace(1, len(xs) - 1, (max_points - 2) // 2 + 1).round().astype(int)
    kept = set(dy)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        part = ys[a:b]
        assert min(part) in kept and max(part) in kept


def test_short_curves_pass_through_and_bad_input_is_refused() -> None:
    assert min_max_last([1, 2, 3], [3.0, 1.0, 2.0]) == ([1, 2, 3], [3.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="length"):
        min_max_last([1, 2], [1.0])
    with pytest.raises(ValueError, match="max_points"):
        min_max_last([1, 2], [1.0, 2.0], 3)


def test_charts_ship_at_most_max_points() -> None:
    xs, ys = _curve(50_000)
    fig = charts.bound_curves({"loss": list(zip(xs, ys, strict=True))})
    trace = fig.data[0]
    assert len(trace.x) <= MAX_POINTS
    assert trace.x[-1] == xs[-1] and trace.y[-1] == ys[-1]
    assert min(trace.y) == min(ys) and max(trace.y) == max(ys)

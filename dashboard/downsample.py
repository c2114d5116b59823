"""Downsampling long curves for the browser, keeping what the eye looks for.

A run of 50,000 logged steps would ship 50,000 points per curve to the browser on every
refresh. `min_max_last` keeps at most `max_points`: the first and last points, and in each of
(max_points - 2) / 2 equal slices of the rest its lowest and its highest point, in step
order. Every extreme of the curve (the global minimum and maximum among them) and the last
value survive, so a spike or the latest loss is never smoothed away.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_POINTS = 2_000


def min_max_last(
    xs: Sequence[float], ys: Sequence[float], max_points: int = MAX_POINTS
) -> tuple[list, list]:
    """(xs, ys) reduced to at most `max_points` points, keeping the first, the last, and each
    slice's minimum and maximum. Inputs are in x order and of equal length."""
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys differ in length: {len(xs)} and {len(ys)}")
    if max_points < 4:
        raise ValueError(f"max_points must be >= 4, got {max_points}")
    n = len(xs)
    if n <= max_points:
        return list(xs), list(ys)
    y = np.asarray(ys, dtype=float)
    buckets = (max_points - 2) // 2
    edges = np.linspace(1, n - 1, buckets + 1).round().astype(int)
    keep = [0]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b <= a:
            continue
        part = y[a:b]
        lo, hi = a + int(np.argmin(part)), a + int(np.argmax(part))
        keep.extend(sorted({lo, hi}))
    keep.append(n - 1)
    return [xs[i] for i in keep], [ys[i] for i in keep]

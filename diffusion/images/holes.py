"""Holes in a mask, measured without torch: the box test of inpainting's "auto" start and the
coarse pass's shrink (`diffusion.chains.posterior_coarse`), shared by the engine and by the
dashboard, which says before a job what the worker will do with the hole.

Masks are bool (H, W), True = known pixel.
"""

from __future__ import annotations

import numpy as np


def holds_box(mask: np.ndarray, t: int) -> bool:
    """Whether some t x t box of `mask` (bool (H, W), True = known) holds no known pixel."""
    mask = np.asarray(mask, dtype=bool)
    if t < 1 or min(mask.shape) < t:
        return False
    sums = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    known_in_box = sums[t:, t:] - sums[:-t, t:] - sums[t:, :-t] + sums[:-t, :-t]
    return bool(known_in_box.min() == 0)


def hole_size(mask: np.ndarray) -> tuple[int, int]:
    """(height, width) of the box around the missing pixels ((0, 0) when none is)."""
    rows, cols = np.nonzero(~np.asarray(mask, dtype=bool))
    if rows.size == 0:
        return 0, 0
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


def block_means(image: np.ndarray, s: int) -> np.ndarray:
    """(H, W[, C]) -> (ceil(H / s), ceil(W / s)[, C]) float64: means of s x s blocks, the
    edges padded by repetition up to a multiple of s (the coarse pass's shrink)."""
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape[:2]
    hc, wc = -(-h // s), -(-w // s)
    pad = ((0, hc * s - h), (0, wc * s - w)) + ((0, 0),) * (img.ndim - 2)
    img = np.pad(img, pad, mode="edge")
    return img.reshape(hc, s, wc, s, *img.shape[2:]).mean(axis=(1, 3))


def downsample_mask(mask: np.ndarray, s: int) -> np.ndarray:
    """The coarse mask of `downsample`: a coarse pixel is known when its whole block is."""
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    hc, wc = -(-h // s), -(-w // s)
    m = np.pad(mask, ((0, hc * s - h), (0, wc * s - w)), mode="edge")
    return m.reshape(hc, s, wc, s).all(axis=(1, 3))


__all__ = ["block_means", "downsample_mask", "hole_size", "holds_box"]

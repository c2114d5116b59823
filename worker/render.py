"""Pictures of samples for the store: image grids and 2-D point clouds as PNG (Pillow)."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def image_grid(images: np.ndarray, *, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """N x H x W [x C] -> one uint8 picture, images in rows of `columns` (about square)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    n, h, w = images.shape[:3]
    c = images.shape[3] if images.ndim == 4 else 1
    images = images.reshape(n, h, w, c)
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        grid[y : y + h, x : x + w] = images[i]
    return grid[..., 0] if c == 1 else grid


def points_picture(points: np.ndarray, size: int = 256) -> np.ndarray:
    """N x 2 points drawn as dark dots on white, scaled to fit (a scatter without matplotlib)."""
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    pts = pts[np.isfinite(pts).all(axis=1)]
    img = np.full((size, size), 255, np.uint8)
    if len(pts) == 0:
        return img
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = float(max(hi - lo)) or 1.0
    centre = (lo + hi) / 2
    xy = ((pts - centre) / span * 0.9 + 0.5) * (size - 1)
    x = np.clip(np.rint(xy[:, 0]), 0, size - 1).astype(int)
    y = np.clip(np.rint((size - 1) - xy[:, 1]), 0, size - 1).astype(int)
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        img[np.clip(y + dy, 0, size - 1), np.clip(x + dx, 0, size - 1)] = 40
    return img


def to_8bit(images: np.ndarray, levels: int = 256) -> np.ndarray:
    """Grey levels 0..levels-1 (17 for the digits, 256 for 8-bit data) -> uint8 0..255."""
    images = np.asarray(images, dtype=np.float64)
    if levels != 256:
        images = images * (255.0 / (levels - 1))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def gallery_png(samples: np.ndarray, kind: str, levels: int = 256) -> bytes | None:
    """A PNG of a gallery: a grid for images, a scatter for 2-D points; None otherwise."""
    samples = np.asarray(samples)
    if kind == "images" and samples.ndim in (3, 4):
        return _png(image_grid(to_8bit(samples, levels)))
    if kind == "points" and samples.ndim == 2 and samples.shape[1] >= 2:
        return _png(points_picture(samples))
    return None


def image_png(image: np.ndarray, levels: int = 256) -> bytes:
    """One H x W [x C] image in grey levels 0..levels-1 as an 8-bit PNG."""
    return _png(to_8bit(image, levels))

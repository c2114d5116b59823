"""Pictures of samples for the store: image grids and 2-D point clouds as PNG
(grids and PNG encoding: diffusion.imageio)."""

from __future__ import annotations

import numpy as np

from diffusion.imageio import grid, png_bytes


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
        return png_bytes(grid(to_8bit(samples, levels), pad=2))
    if kind == "points" and samples.ndim == 2 and samples.shape[1] >= 2:
        return png_bytes(points_picture(samples))
    return None


def image_png(image: np.ndarray, levels: int = 256) -> bytes:
    """One H x W [x C] image in grey levels 0..levels-1 as an 8-bit PNG."""
    return png_bytes(to_8bit(image, levels))

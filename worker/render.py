"""Pictures of samples for the store: image grids and 2-D point clouds as PNG
(grids and PNG encoding: diffusion.images.imageio)."""

from __future__ import annotations

import numpy as np

from diffusion.images.imageio import grid, png_bytes, points_picture


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

"""Write samples to files: PNG grids for images and sequences, PNG scatter or CSV for points.
Pillow and numpy only (no plotting library)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from diffusion.imageio import grid


def scatter(points: np.ndarray, size: int = 512, radius: float = 1.5) -> Image.Image:
    """(N, 2) points -> a white PNG scatter plot, axes scaled to the points' range."""
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    pts = np.asarray(points, dtype=np.float64)[:, :2]
    lo, hi = pts.min(0), pts.max(0)
    span = float(max((hi - lo).max(), 1e-9))
    margin = 0.05 * size
    xy = margin + (pts - lo) / span * (size - 2 * margin)
    for x, y in xy:
        y = size - y
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(31, 119, 180))
    return img


def save_samples(samples: np.ndarray, kind: str, path: Path) -> None:
    """Save to .png (grid, scatter or sequence raster), .csv (rows) or .npy."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, samples)
    elif suffix == ".csv":
        flat = samples.reshape(samples.shape[0], -1)
        fmt = "%d" if flat.dtype.kind in "ui" else "%.6g"
        np.savetxt(path, flat, delimiter=",", fmt=fmt)
    elif kind == "images":
        Image.fromarray(grid(samples, pad=2)).save(path)
    elif kind == "sequences":
        rows = (1 - samples.reshape(samples.shape[0], -1).astype(np.uint8)) * 255
        Image.fromarray(np.kron(rows, np.ones((8, 8), np.uint8))).save(path)
    else:
        scatter(samples).save(path)

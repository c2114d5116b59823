"""Write samples to files: PNG grids for images and sequences, PNG scatter or CSV for points.
Pillow and numpy only (no plotting library)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from diffusion.images.imageio import grid, points_picture


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
        Image.fromarray(points_picture(samples, 512)).save(path)

"""Reading images from files with checks at the boundary, and writing them back.

Owns the conversion between image files (PNG, JPEG, ...) and the engine's image arrays
(PNG bytes, grids of images, masks), and every check that a user's file gets before a
posterior is computed from it: unreadable or truncated files, decompression bombs,
animated images, wrong size, wrong channel count, and masks that do not match or hide
nothing. Each failure raises `ImageInputError` with a message that says what was wrong and
what is accepted; nothing is written on failure (callers write only after every check has
passed).

Array conventions (used across `diffusion/`):
- an image is a uint8 array (H, W) for greyscale or (H, W, 3) for RGB;
- "data space" is float in [0, 256): the 8-bit value v is the bin [v, v + 1), its
  dequantized values are v + u with u ~ U(0, 1) (Sohl-Dickstein et al. 2015, footnote on
  CIFAR-10; model.md section 11). A quantized input maps to the bin centre v + 0.5.
- a mask is a bool array (H, W), True = known pixel. In a mask file, white (>= 128) is
  known and black is missing (the convention of RePaint's "keep" masks, Lugmayr et al. 2022).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from diffusion.images import limits
from diffusion.images.checks import (  # noqa: F401  (ImageInputError, MAX_PIXELS re-exported)
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    ImageInfo,
    ImageInputError,
    inspect_image,
    png_bytes,
)
from diffusion.images.checks import load_image as decode_image

ColourMode = Literal["L", "RGB"]
_GREY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F", "La"}


def _checked(source: str | os.PathLike | bytes) -> tuple[bytes, ImageInfo, str]:
    """The bytes of an image file or upload, checked (diffusion.images.checks), its info and
    the name its messages use."""
    if isinstance(source, bytes | bytearray):
        name, data, cap = "the uploaded data", bytes(source), MAX_UPLOAD_BYTES
    else:
        name, path = str(source), Path(source)
        if not path.is_file():
            raise ImageInputError(f"{name}: no such file")
        try:
            if path.stat().st_size > limits.MAX_FILE_BYTES:  # refuse before reading it all
                limits.check_size(name, path.stat().st_size)
            data = path.read_bytes()
        except limits.LimitError as exc:
            raise ImageInputError(f"{exc} (as on the web page)") from None
        except OSError as exc:
            raise ImageInputError(f"{name}: cannot be read ({exc.strerror or exc})") from None
        cap = MAX_UPLOAD_BYTES  # the web path's limit (diffusion.images.limits), checked above
    try:
        info = inspect_image(data, max_bytes=cap)
    except ImageInputError as exc:
        raise ImageInputError(f"{name}: {exc}") from None
    return data, info, name


def _channels(data: bytes, info: ImageInfo) -> int:
    """1 for greyscale modes (with or without alpha) and grey palettes, 3 for colour ones."""
    if info.mode in _GREY_MODES:
        return 1
    if info.mode in ("P", "PA"):
        rgb = decode_image(data, "RGB", max_bytes=len(data))
        grey = (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
        return 1 if grey else 3
    return 3


def load_image(
    source: str | os.PathLike | bytes,
    mode: ColourMode = "L",
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read any image and convert it: to `mode`, and resized (Lanczos) to `size` = (H, W).

    For data sets of the user's own images, where conversion is wanted. Returns uint8
    (H, W) for "L", (H, W, 3) for "RGB".
    """
    data, _, _ = _checked(source)
    arr = decode_image(data, mode, max_bytes=len(data))
    if size is not None and arr.shape[:2] != tuple(size):
        pil = Image.fromarray(arr)
        arr = np.asarray(pil.resize((size[1], size[0]), Image.Resampling.LANCZOS))
    return arr


def read_image_checked(
    source: str | os.PathLike | bytes, shape: tuple[int, int] | None, channels: int
) -> np.ndarray:
    """Read an image that must already be `shape` = (H, W) (None: any size, for fully
    convolutional models) with `channels` (1 or 3).

    For posterior inputs: nothing is resized or recoloured silently, and an animated image
    is refused. Returns uint8 (H, W) or (H, W, 3). Raises ImageInputError with what was
    found and what is expected.
    """
    data, info, name = _checked(source)
    if info.n_frames > 1:
        raise ImageInputError(
            f"{name}: animated or multi-frame image ({info.n_frames} frames); "
            "give a single still PNG or JPEG"
        )
    h, w = shape if shape is not None else (info.height, info.width)
    if (info.width, info.height) != (w, h):
        raise ImageInputError(
            f"{name}: image is {info.width} x {info.height} (W x H) but the model takes "
            f"{w} x {h}; resize it first"
        )
    have = _channels(data, info)
    if have != channels:
        words = {1: "greyscale (1 channel)", 3: "RGB (3 channels)"}
        raise ImageInputError(
            f"{name}: image is {words[have]} but the model takes {words[channels]}"
        )
    return decode_image(data, "L" if channels == 1 else "RGB", max_bytes=len(data))


def read_mask(source: str | os.PathLike | bytes, shape: tuple[int, int]) -> np.ndarray:
    """Read a mask file: white (>= 128) = known, black = missing. Returns bool (H, W).

    Rejects a mask whose size differs from `shape`, one that hides nothing (all known),
    and one that hides everything (that is plain sampling: use `difflab sample`).
    """
    data, info, name = _checked(source)
    name = "the uploaded mask" if isinstance(source, bytes | bytearray) else name
    if (info.width, info.height) != (shape[1], shape[0]):
        raise ImageInputError(
            f"{name}: mask is {info.width} x {info.height} (W x H) but the image is "
            f"{shape[1]} x {shape[0]}"
        )
    mask = decode_image(data, "L", max_bytes=len(data)) >= 128
    check_mask(mask, shape, name=name)
    return mask


def check_mask(mask: np.ndarray, shape: tuple[int, int], name: str = "mask") -> None:
    """Raise ImageInputError unless `mask` is bool (H, W) = shape and hides some pixels."""
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise ImageInputError(f"{name}: must be a boolean array (True = known), got {mask.dtype}")
    if mask.shape != tuple(shape):
        raise ImageInputError(f"{name}: shape {mask.shape} does not match the image {shape}")
    if mask.all():
        raise ImageInputError(
            f"{name}: hides nothing (every pixel is known); mark the pixels to fill in black"
        )
    if not mask.any():
        raise ImageInputError(
            f"{name}: hides every pixel; that is plain sampling (`difflab sample`)"
        )


def to_data(img: np.ndarray, levels: int = 256) -> np.ndarray:
    """uint8 image -> data space float64 in [0, levels), at bin centres.

    levels = 256: v + 0.5. Fewer levels (the digits have 17) map the 8-bit bins onto the
    data's: (v + 0.5) * levels / 256.
    """
    return (np.asarray(img, dtype=np.float64) + 0.5) * (levels / 256.0)


def to_uint8(x: np.ndarray, levels: int = 256) -> np.ndarray:
    """Data space [0, levels) -> uint8 by flooring to the 8-bit bin, clipped to 0..255."""
    y = np.asarray(x, dtype=np.float64) * (256.0 / levels)
    return np.clip(np.floor(y), 0, 255).astype(np.uint8)


def save_png(path: str | os.PathLike, img: np.ndarray) -> None:
    """Write a uint8 (H, W) or (H, W, 3) array as PNG, atomically (tmp file + rename);
    a float array is taken as data space (`to_uint8`)."""
    path = Path(path)
    arr = np.asarray(img)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(png_bytes(arr if arr.dtype == np.uint8 else to_uint8(arr)))
    os.replace(tmp, path)


def grid(
    images: np.ndarray, columns: int | None = None, pad: int = 1, fill: int = 255
) -> np.ndarray:
    """N images (N, H, W[, C]) -> one uint8 picture, in rows of `columns` (default: about
    square), with `pad` pixels of `fill` around and between them (skimage.util.montage).
    Non-uint8 values are rounded and clipped to 0..255."""
    from skimage.util import montage

    arr = np.asarray(images)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(np.float64)), 0, 255).astype(np.uint8)
    if arr.ndim == 4 and arr.shape[3] == 1:
        arr = arr[..., 0]
    n = arr.shape[0]
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    shape = (math.ceil(n / cols), cols)
    if arr.ndim == 4:
        return montage(
            arr, fill=(fill,) * arr.shape[3], grid_shape=shape, padding_width=pad, channel_axis=-1
        )
    return montage(arr, fill=fill, grid_shape=shape, padding_width=pad)


def points_picture(points: np.ndarray, size: int = 256, radius: float = 1.5) -> np.ndarray:
    """2-D points (N x 2, more columns ignored) as a white RGB picture (size, size, 3) of
    blue dots, axes equal and scaled to fit the points (a scatter without a plotting
    library); non-finite points are left out."""
    from PIL import ImageDraw

    pts = np.asarray(points, dtype=np.float64)
    pts = pts.reshape(pts.shape[0], -1)[:, :2] if pts.size else np.zeros((0, 2))
    pts = pts[np.isfinite(pts).all(axis=1)]
    img = Image.new("RGB", (size, size), (255, 255, 255))
    if len(pts):
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        span = float(max(hi - lo)) or 1.0
        xy = ((pts - (lo + hi) / 2) / span * 0.9 + 0.5) * (size - 1)
        draw = ImageDraw.Draw(img)
        for x, y in xy:
            y = size - 1 - y
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=(31, 119, 180))
    return np.asarray(img)


# ---------------------------------------------------------------------------------- masks
MASK_KINDS = ("center", "left", "random", "rectangle")


def make_mask(
    kind: str,
    shape: tuple[int, ...],
    *,
    size: int | None = None,
    fraction: float = 0.5,
    seed: int = 0,
    rect: tuple[float, float, float, float] = (0.25, 0.75, 0.25, 0.75),
) -> np.ndarray:
    """A bool (H, W) mask, True = known.

    "center" (or "centre"): a central square of side `size` (default half the shorter side)
    is missing (the paper's figure 5 hides the central 100 x 100 of a bark image); "left":
    the left half is missing; "random": each pixel is missing with probability `fraction`,
    drawn from `seed`; "rectangle": rows rect[0:2] and columns rect[2:4] (fractions of the
    sides) are missing.
    """
    h, w = shape[:2]
    mask = np.ones((h, w), dtype=bool)
    if kind in ("center", "centre"):
        k = size or min(h, w) // 2
        if not 1 <= k <= min(h, w):
            raise ImageInputError(f"center size must be in [1, {min(h, w)}], got {k}")
        top, left = (h - k) // 2, (w - k) // 2
        mask[top : top + k, left : left + k] = False
    elif kind == "left":
        mask[:, : w // 2] = False
    elif kind == "random":
        if not 0 < fraction < 1:
            raise ImageInputError(f"fraction must be in (0, 1), got {fraction}")
        mask = np.random.default_rng(seed).random((h, w)) >= fraction
    elif kind == "rectangle":
        r0, r1, c0, c1 = rect
        rows = slice(math.floor(r0 * h), math.ceil(r1 * h))
        mask[rows, math.floor(c0 * w) : math.ceil(c1 * w)] = False
    else:
        raise ImageInputError(f"mask kind must be one of {', '.join(MASK_KINDS)}; got {kind!r}")
    return mask

"""Checks of image files by content, and their decoding: the one image-checking stack.

Every image that comes from a person (an upload, a file named on the command line, a
folder of training images) passes through here before it is used. The type is read from
the content (never the file name); a size cap and a pixel cap are checked before any pixel
is decoded (decompression bombs); truncated and corrupt files and non-images are refused
with an `ImageInputError` that says what was wrong and what is accepted. Awkward but valid
images are accepted and normalised, and each change is recorded as a note the user can
read: 16-bit depth, palettes, alpha, CMYK, EXIF rotation, animation.

Pillow, numpy and the standard library only (no torch): the store, the dashboard, the
worker and the engine's file readers (diffusion.images.imageio) all use it.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from diffusion.images import limits

MAX_UPLOAD_BYTES = limits.MAX_FILE_BYTES  # one file (diffusion.images.limits: every door's rules)
MAX_PIXELS = limits.MAX_PIXELS  # width x height of one frame (about a 5000 x 5000 photo)
ACCEPTED_FORMATS = {"PNG", "JPEG", "MPO", "GIF", "BMP", "TIFF", "WEBP", "PPM"}
ACCEPTED_TEXT = "PNG, JPEG, GIF, BMP, TIFF, WebP or PPM/PGM images"
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}


class ImageInputError(ValueError):
    """An image or mask was refused; the message says what was wrong and what is accepted."""


@dataclass(frozen=True)
class ImageInfo:
    """What an uploaded image is, read from its content.

    `mode` is Pillow's mode of the stored frame; `notes` lists every conversion that
    `load_image` will make (one readable sentence each), empty when none is needed.
    """

    format: str
    media_type: str
    width: int
    height: int
    mode: str
    n_frames: int
    size_bytes: int
    exif_orientation: int
    notes: tuple[str, ...]

    @property
    def pixels(self) -> int:
        return self.width * self.height


def human_bytes(n: int) -> str:
    """A byte count for people: 512 bytes, 40.0 KiB, 20.0 MiB."""
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.1f} MiB"


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Open (header only) and check the format and pixel count before decoding."""
    if not data:
        raise ImageInputError(f"The file is empty. Upload {ACCEPTED_TEXT}.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ImageInputError(
            f"The image is far too large to decode safely; at most {max_pixels:,} pixels "
            f"are accepted (this protects against decompression bombs). ({exc})"
        ) from None
    except UnidentifiedImageError:
        raise ImageInputError(
            f"The file is not an image that can be read (its content is not a known image "
            f"format, whatever its name says). Upload {ACCEPTED_TEXT}."
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageInputError(
            f"The image is truncated or corrupt and cannot be read ({exc}). Upload {ACCEPTED_TEXT}."
        ) from None
    if img.format not in ACCEPTED_FORMATS:
        raise ImageInputError(f"{img.format} images are not accepted. Upload {ACCEPTED_TEXT}.")
    width, height = img.size
    if width < 1 or height < 1:
        raise ImageInputError("The image has no pixels (zero width or height).")
    if width * height > max_pixels:
        raise ImageInputError(
            f"The image is {width} x {height} = {width * height:,} pixels; at most "
            f"{max_pixels:,} pixels are accepted (this protects against decompression bombs). "
            f"Resize it and upload it again."
        )
    return img


def _decode(img: Image.Image) -> None:
    """Decode the first frame fully, so that truncated or corrupt data is found now."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.seek(0)
            img.load()
    except Image.DecompressionBombError as exc:
        raise ImageInputError(f"The image is too large to decode safely ({exc}).") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageInputError(
            f"The image is truncated or corrupt (the file may end early) and cannot be "
            f"decoded ({exc}). Upload the complete file."
        ) from None


def _notes(img: Image.Image, n_frames: int, orientation: int) -> tuple[str, ...]:
    notes: list[str] = []
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        notes.append(f"High bit depth ({mode}) was scaled down to 8 bits per channel.")
    if mode in ("P", "PA"):
        notes.append("The palette (indexed colour) image was expanded to full colour.")
    if mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info):
        notes.append("Transparency (alpha) was flattened onto a white background.")
    if mode == "CMYK":
        notes.append("CMYK colour was converted to RGB.")
    if mode in ("YCbCr", "LAB", "HSV"):
        notes.append(f"{mode} colour was converted to RGB.")
    if mode == "1":
        notes.append("The 1-bit image was expanded to 8-bit greyscale.")
    if orientation not in (0, 1):
        notes.append(f"The image was turned upright as its EXIF orientation ({orientation}) asks.")
    if n_frames > 1:
        notes.append(f"The image has {n_frames} frames (animated or multi-page); the first is used")
    return tuple(notes)


def inspect_image(
    data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_PIXELS
) -> ImageInfo:
    """Check an uploaded image by content and say what it is.

    Raises ImageInputError when the data is too large, not an image, of a format not accepted,
    over the pixel cap, truncated or corrupt.
    """
    if len(data) > max_bytes:
        raise ImageInputError(
            f"The file is {human_bytes(len(data))}; uploads up to "
            f"{human_bytes(max_bytes)} are accepted."
        )
    img = _open(data, max_pixels)
    n_frames = int(getattr(img, "n_frames", 1) or 1)
    if img.format == "MPO":  # phone JPEGs carry a second, preview frame: not an animation
        n_frames = 1
    _decode(img)
    try:
        orientation = int(img.getexif().get(0x0112, 1) or 1)
    except Exception:  # a broken EXIF block is not worth refusing a photo for
        orientation = 1
    fmt = "JPEG" if img.format == "MPO" else str(img.format)
    return ImageInfo(
        format=fmt,
        media_type=Image.MIME.get(fmt, "application/octet-stream"),
        width=img.size[0],
        height=img.size[1],
        mode=img.mode,
        n_frames=n_frames,
        size_bytes=len(data),
        exif_orientation=orientation,
        notes=_notes(img, n_frames, orientation),
    )


def _to_uint8(img: Image.Image) -> Image.Image:
    """High bit depth (I;16, I, F) to 8-bit 'L', scaling by the format's range."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16"):
        scaled = arr.astype(np.float64) / 257.0
    elif img.mode == "I":
        top = float(arr.max()) if arr.size else 0.0
        scaled = arr.astype(np.float64) / (257.0 if top > 255 and top <= 65535 else 1.0)
        if top > 65535:
            scaled = arr.astype(np.float64) * (255.0 / top)
    else:  # "F": [0, 1] floats are common; otherwise treat as 0..255
        arr = np.nan_to_num(arr.astype(np.float64))
        scaled = arr * 255.0 if arr.size and float(arr.max()) <= 1.0 else arr
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def _flatten(img: Image.Image) -> Image.Image:
    """Any mode to 'L' or 'RGB': palettes expanded, alpha on white, CMYK and others to RGB."""
    if img.mode in _SIXTEEN_BIT_MODES:
        return _to_uint8(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "RGBa", "LA", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
        return img
    if img.mode in ("L", "RGB"):
        return img
    if img.mode == "1":
        return img.convert("L")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def load_image(
    data: bytes,
    mode: str = "L",
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> np.ndarray:
    """Decode an uploaded image to a uint8 array, upright, 8-bit, without alpha.

    Returns H x W for mode "L" and H x W x 3 for mode "RGB". The first frame of an
    animated or multi-page image is used. Raises ImageInputError like `inspect_image`.
    """
    if mode not in ("L", "RGB"):
        raise ValueError(f"mode must be 'L' or 'RGB', not {mode!r}")
    inspect_image(data, max_bytes=max_bytes, max_pixels=max_pixels)
    img = Image.open(io.BytesIO(data))
    img.seek(0)
    with contextlib.suppress(Exception):  # a broken EXIF block: keep the pixels as stored
        img = ImageOps.exif_transpose(img) or img
    img = _flatten(img).convert(mode)
    return np.asarray(img, dtype=np.uint8).copy()


def png_bytes(img: np.ndarray) -> bytes:
    """A uint8 (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array as PNG bytes; other dtypes
    are rounded and clipped to 0..255 first."""
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr.astype(np.float64)), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def make_thumbnail(data: bytes, size: int = 128) -> bytes:
    """A PNG thumbnail whose longer side is `size` pixels, made from image bytes.

    Larger images are shrunk smoothly (Lanczos); small ones (MNIST digits, texture patches)
    are enlarged with nearest-neighbour so their pixels stay crisp. Greyscale stays 'L'.
    """
    if size < 1:
        raise ValueError("size must be a positive number of pixels")
    inspect_image(data, max_bytes=max(len(data), 1), max_pixels=MAX_PIXELS)
    img = Image.open(io.BytesIO(data))
    img.seek(0)
    with contextlib.suppress(Exception):
        img = ImageOps.exif_transpose(img) or img
    img = _flatten(img)
    w, h = img.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    return png_bytes(np.asarray(img.resize(new, resample=resample)))

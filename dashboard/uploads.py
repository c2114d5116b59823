"""Uploaded files: checked by content (db.media), stored under their hash, never half-written.

A training folder is built in a temporary folder next to its final place and renamed into
place only when every image has passed; a failed upload leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from db.entities import User
from db.media import (
    MediaError,
    inspect_image,
    load_image,
    safe_zip_images,
    to_png,
)
from diffusion.settings import data_dir

UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "ppm", "pgm", "zip"]
IMAGE_TYPES = [t for t in UPLOAD_TYPES if t != "zip"]
MAX_TRAINING_IMAGES = 5000
MAX_ZIP_BYTES = 200 * 1024 * 1024


class UploadedFileLike(Protocol):
    name: str

    def getvalue(self) -> bytes: ...


def _images_from(files: Sequence[UploadedFileLike]) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    for f in files:
        data = f.getvalue()
        if data[:4] == b"PK\x03\x04" or f.name.lower().endswith(".zip"):
            members = safe_zip_images(
                data, max_files=MAX_TRAINING_IMAGES, max_total_bytes=MAX_ZIP_BYTES
            )
            out += [(f"{f.name}/{m.name}", m.data) for m in members]
        else:
            try:
                inspect_image(data)
            except MediaError as exc:
                raise MediaError(f"{f.name}: {exc}") from None
            out.append((f.name, data))
        if len(out) > MAX_TRAINING_IMAGES:
            raise MediaError(f"At most {MAX_TRAINING_IMAGES:,} training images are accepted.")
    return out


def prepare_image_folder(
    files: Sequence[UploadedFileLike] | None, owner: User, root: Path | None = None
) -> dict[str, Any]:
    """Check uploaded images (or zips of them) and write them as PNGs into a folder.

    Returns the data options for the "images" data set: {"path": folder, "mode": L|RGB}.
    The folder is named by the hash of its content and written atomically.
    """
    if not files:
        raise MediaError("Upload a zip of images, or at least two image files, for this data set.")
    images = _images_from(files)
    if len(images) < 2:
        raise MediaError("At least two images are needed (one to train on, one held out).")
    decoded = []
    for name, data in images:
        try:
            rgb = load_image(data, "RGB")
        except MediaError as exc:
            raise MediaError(f"{name}: {exc}") from None
        decoded.append(rgb)
    distinct = len({a.tobytes() for a in decoded})
    if distinct < 2:
        raise MediaError(
            f"The {len(decoded)} images are all the same picture; at least two different "
            "images are needed (one to train on, one held out)."
        )
    grey = all(
        np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 1], a[..., 2])
        for a in decoded
    )
    mode = "L" if grey else "RGB"
    pngs = [to_png(a[..., 0] if grey else a) for a in decoded]
    digest = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in pngs)).hexdigest()
    base = (root or data_dir() / "uploads") / f"user{owner.id}"
    final = base / digest[:32]
    if not final.exists():
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=base, prefix=".tmp-"))
        try:
            for png in pngs:
                (tmp / f"{hashlib.sha256(png).hexdigest()[:32]}.png").write_bytes(png)
            os.replace(tmp, final)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not final.exists():
                raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return {"path": str(final), "mode": mode}

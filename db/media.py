"""Uploaded zips of images: every member checked by content before anything is stored.

Zips whose paths escape their folder, symbolic links, encrypted entries and zips with too
many or too large members are refused with a `MediaError` that says what was wrong and
what is accepted; each image in them passes the one image-checking stack,
diffusion.images.checks, whose names (inspect_image, load_image, make_thumbnail, the caps)
are re-exported here for the store and the dashboard.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from dataclasses import dataclass

from diffusion.images import limits
from diffusion.images.checks import (  # noqa: F401  (re-exported)
    ACCEPTED_FORMATS,
    ACCEPTED_TEXT,
    MAX_PIXELS,
    MAX_UPLOAD_BYTES,
    ImageInfo,
    ImageInputError,
    human_bytes,
    inspect_image,
    load_image,
    make_thumbnail,
)
from diffusion.images.imageio import png_bytes

MediaError = ImageInputError  # one error for a refused image, wherever it was checked
MAX_ZIP_FILES = 2000
MAX_ZIP_TOTAL_BYTES = 200 * 1024 * 1024  # uncompressed

_JUNK_PREFIXES = ("__MACOSX/",)
_JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}


@dataclass(frozen=True)
class ZipMember:
    """One image taken out of an uploaded zip: its (checked) path, bytes and info."""

    name: str
    data: bytes
    info: ImageInfo


def _check_member_name(info: zipfile.ZipInfo) -> str:
    """The member's normalised path; links, encryption and paths that escape the folder are
    refused by the rules every door applies (diffusion.images.limits)."""
    try:
        return limits.check_member(info, "The zip")
    except limits.LimitError as exc:
        raise MediaError(f"{exc}; only plain, unencrypted files inside it are accepted.") from None


def _is_junk(name: str) -> bool:
    base = posixpath.basename(name)
    return name.startswith(_JUNK_PREFIXES) or base in _JUNK_NAMES or base.startswith("._")


def _read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """Read one member, stopping as soon as it exceeds the remaining budget (lying headers)."""
    out = bytearray()
    with zf.open(info) as fh:
        while chunk := fh.read(1 << 16):
            out += chunk
            if len(out) > budget:
                raise MediaError(
                    "The zip unpacks to more data than accepted; "
                    "upload a smaller zip or fewer images."
                )
    return bytes(out)


def safe_zip_images(
    data: bytes,
    max_files: int = MAX_ZIP_FILES,
    max_total_bytes: int = MAX_ZIP_TOTAL_BYTES,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> list[ZipMember]:
    """Take the images out of an uploaded zip, checking it before anything is unpacked.

    Refuses (MediaError) a non-zip, a zip with more than `max_files` files, one that
    unpacks to more than `max_total_bytes`, paths that escape the folder, links, encrypted
    entries, and any member that is not an accepted image (named in the message). System
    clutter (`__MACOSX/`, `.DS_Store`, `Thumbs.db`) is skipped. Nothing is written to disk.
    """
    if len(data) > max_total_bytes:
        raise MediaError(
            f"The zip is {human_bytes(len(data))}; at most {human_bytes(max_total_bytes)}."
        )
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError):
        raise MediaError(
            f"The file is not a readable zip archive. Upload a .zip of {ACCEPTED_TEXT}, "
            f"or the images themselves."
        ) from None
    with zf:
        entries = [i for i in zf.infolist() if not i.is_dir()]
        if len(entries) > max_files:
            raise MediaError(
                f"The zip holds {len(entries):,} files; at most {max_files:,} are accepted."
            )
        names = [_check_member_name(i) for i in entries]
        declared = sum(i.file_size for i in entries)
        if declared > max_total_bytes:
            raise MediaError(
                f"The zip unpacks to {human_bytes(declared)}; at most "
                f"{human_bytes(max_total_bytes)} are accepted."
            )
        members: list[ZipMember] = []
        budget = max_total_bytes
        for info, name in zip(entries, names, strict=True):
            if _is_junk(name):
                continue
            try:
                content = _read_capped(zf, info, min(budget, max_bytes))
            except MediaError:
                raise
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                raise MediaError(f"The zip entry {name!r} is corrupt ({exc}).") from None
            budget -= len(content)
            try:
                image_info = inspect_image(content, max_bytes=max_bytes, max_pixels=max_pixels)
            except MediaError as exc:
                raise MediaError(f"In the zip, {name!r}: {exc}") from None
            members.append(ZipMember(name=name, data=content, info=image_info))
    if not members:
        raise MediaError(f"The zip holds no images. Put {ACCEPTED_TEXT} in it.")
    return members


to_png = png_bytes  # one PNG encoder (diffusion.images.imageio)

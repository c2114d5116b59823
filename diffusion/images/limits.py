"""The rules every door applies to files people give the lab: the web pages (db.media,
dashboard.uploads), the command line, the Python API and the worker.

Torch-free: the image checks (diffusion.images.checks, which db.media re-exports) read their
byte and pixel caps from here, so every door has one set of numbers.
"""

from __future__ import annotations

import posixpath
import stat
import zipfile
from collections.abc import Iterator
from pathlib import Path

MAX_FILE_BYTES = 20 * 1024 * 1024  # one image file (an upload, a CLI input)
MAX_PIXELS = 25_000_000  # width x height of one image (decompression bombs)
MAX_ZIP_FILES = 5000  # files in one zip of training images (an upload)
# images in a folder on the machine that trains: a local folder is no upload, so the cap only
# bounds the decoded array (200,000 images of 32 x 32 RGB are 0.6 GB); each file still obeys
# MAX_FILE_BYTES and MAX_PIXELS
MAX_FOLDER_FILES = 200_000
MAX_ZIP_TOTAL_BYTES = 200 * 1024 * 1024  # what one zip unpacks to


class LimitError(ValueError):
    """A file breaks one of the rules; the message names it, the rule and the limit."""


def mib(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def check_size(name: str, size: int, limit: int = MAX_FILE_BYTES) -> None:
    if size > limit:
        raise LimitError(f"{name}: the file is {mib(size)}; files up to {mib(limit)} are accepted")


def check_member(info: zipfile.ZipInfo, zip_name: str) -> str:
    """A zip member's normalised path, or LimitError for a link, an encrypted entry or a
    path that escapes the folder."""
    name = info.filename
    mode = (info.external_attr >> 16) & 0xFFFF
    if stat.S_ISLNK(mode):
        raise LimitError(f"{zip_name}: {name!r} is a symbolic link; only plain files are accepted")
    if info.flag_bits & 0x1:
        raise LimitError(f"{zip_name}: {name!r} is encrypted; use an unencrypted zip")
    unix = name.replace("\\", "/")
    normal = posixpath.normpath(unix)
    if (
        unix.startswith("/")
        or (len(unix) > 1 and unix[1] == ":")
        or normal == ".."
        or normal.startswith("../")
        or "/../" in f"/{unix}/"
        or "\x00" in name
    ):
        raise LimitError(f"{zip_name}: {name!r} has a path that escapes the folder")
    return normal


def zip_members(
    path: str | Path,
    suffixes: tuple[str, ...],
    *,
    max_files: int = MAX_ZIP_FILES,
    max_total: int = MAX_ZIP_TOTAL_BYTES,
    max_member: int = MAX_FILE_BYTES,
) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of the zip's files with these suffixes, in name order, checked before
    and while reading: file count, declared and actual sizes (a lying header stops at the
    cap), paths that escape the folder, links and encryption. System clutter is skipped."""
    zip_name = str(path)
    with zipfile.ZipFile(path) as zf:
        entries = [i for i in zf.infolist() if not i.is_dir()]
        if len(entries) > max_files:
            raise LimitError(
                f"{zip_name}: the zip holds {len(entries):,} files; at most {max_files:,}"
            )
        names = [check_member(i, zip_name) for i in entries]
        declared = sum(i.file_size for i in entries)
        if declared > max_total:
            raise LimitError(
                f"{zip_name}: the zip unpacks to {mib(declared)}; at most {mib(max_total)}"
            )
        budget = max_total
        for info, name in sorted(zip(entries, names, strict=True), key=lambda p: p[1]):
            base = posixpath.basename(name)
            if name.startswith("__MACOSX/") or base.startswith("._") or base == ".DS_Store":
                continue
            if posixpath.splitext(name)[1].lower() not in suffixes:
                continue
            data = _read_capped(zf, info, min(budget, max_member), f"{zip_name}: {name}")
            budget -= len(data)
            yield name, data


def _read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int, what: str) -> bytes:
    out = bytearray()
    with zf.open(info) as fh:
        while chunk := fh.read(1 << 16):
            out += chunk
            if len(out) > cap:
                raise LimitError(f"{what}: unpacks to more than {mib(cap)}, more than accepted")
    return bytes(out)

"""The artifact store: bytes addressed by their sha256, in a folder by default.

A blob lives at `<root>/<sha[:2]>/<sha>`; writes go to a temporary file (fsynced) and are
renamed into place, so a reader never sees half a file and writing the same bytes twice is
harmless. Every read is checked against the sha256 (CorruptBlob when the bytes differ), and
temporary files left by a writer that died are removed at start-up (`remove_stray_temps`).
Another backend (an S3-compatible bucket) would implement the same five methods.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from pathlib import Path

from db.errors import CorruptBlob, InvalidInput, NotFound

_SHA = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20
STRAY_AGE_S = 600.0


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore:
    """A content-addressed folder. `location` strings are `local:<sha[:2]>/<sha>`."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        if not _SHA.match(sha256):
            raise InvalidInput(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def location(self, sha256: str) -> str:
        return f"local:{sha256[:2]}/{sha256}"

    def put(self, data: bytes) -> str:
        """Store `data`; returns its sha256 (a stored copy that is corrupt is replaced)."""
        sha = sha256_bytes(data)
        target = self.path(sha)
        if target.exists() and target.stat().st_size == len(data) and self._intact(target, sha):
            return sha
        self._write_atomic(target, data)
        return sha

    def put_file(self, source: Path) -> str:
        """Store a file's bytes (copied, the source is left alone); returns its sha256."""
        sha = sha256_file(source)
        target = self.path(sha)
        if not (target.exists() and self._intact(target, sha)):
            self._write_atomic(target, Path(source).read_bytes())
        return sha

    def get(self, sha256: str) -> bytes:
        """The bytes stored under `sha256`, checked against it (CorruptBlob if they differ)."""
        path = self.path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"no artifact bytes for sha256 {sha256}") from exc
        except OSError as exc:
            raise CorruptBlob(f"cannot read the stored file {path}: {exc.strerror or exc}") from exc
        actual = sha256_bytes(data)
        if actual != sha256:
            raise CorruptBlob(
                f"the stored file {path} is corrupt: its {len(data)} bytes hash to "
                f"{actual[:12]}..., not {sha256[:12]}..."
            )
        return data

    def remove_stray_temps(self, older_than_s: float = STRAY_AGE_S) -> list[Path]:
        """Delete `.tmp-*` files left by writers that died (older than `older_than_s`, so a
        write in progress on another host is left alone). Returns what was removed."""
        removed: list[Path] = []
        if not self.root.is_dir():
            return removed
        cutoff = time.time() - older_than_s
        for path in self.root.glob("*/.tmp-*"):
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed.append(path)
            except OSError:
                continue
        return removed

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    @staticmethod
    def _intact(path: Path, sha: str) -> bool:
        try:
            return sha256_file(path) == sha
        except OSError:
            return False

    def _write_atomic(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

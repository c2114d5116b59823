"""Image data sets: generators, file readers in each format (files written here), checks."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion.config import ConfigError, DataConfig
from diffusion.data import build_dataset
from diffusion.data.image_deadleaves import DeadLeavesParams, dead_leaves, sample_radii
from diffusion.data.image_files import (
    DatasetFilesError,
    read_cifar_batch,
    read_idx,
    read_image_collection,
)
from diffusion.data.images import random_patches, texture_image
from diffusion.data.splits import TEST_SEED, load_test_split


def test_radii_follow_the_r_minus_3_law() -> None:
    rng = np.random.default_rng(0)
    r = sample_radii(40_000, 1.0, 20.0, rng)
    assert r.min() >= 1.0 and r.max() <= 20.0
    for q in (2.0, 5.0, 10.0):  # CDF (1 - r^-2) / (1 - 20^-2)
        cdf = (1 - q**-2) / (1 - 20.0**-2)
        assert abs((r <= q).mean() - cdf) < 4.5 * np.sqrt(cdf * (1 - cdf) / r.size)


def test_dead_leaves_images() -> None:
    p = DeadLeavesParams(size=12, r_min=1.0, r_max=12.0)
    a = dead_leaves(20, p, np.random.default_rng(1))
    b = dead_leaves(20, p, np.random.default_rng(1))
    assert a.shape == (20, 12, 12) and a.dtype == np.uint8
    assert np.array_equal(a, b)  # deterministic from the seed
    assert 60 < a.mean() < 195 and a.std() > 30  # uniform grey levels, many disks
    # occlusion: flat regions, so neighbouring pixels are often exactly equal
    assert (a[:, :, 1:] == a[:, :, :-1]).mean() > 0.4
    with pytest.raises(ValueError):
        DeadLeavesParams(size=8, r_min=3.0, r_max=2.0)


def test_deadleaves_dataset_records_parameters() -> None:
    cfg = DataConfig("deadleaves", {"size": 8}, n_train=30, n_holdout=10)
    b = build_dataset(cfg, 0)
    assert b.shape == (1, 8, 8) and b.train.shape == (30, 1, 8, 8) and b.kind == "images"
    assert b.info["r_max"] == 8.0 and b.info["size"] == 8 and b.unit == "bits/pixel"
    assert b.unit_divisor == 64 and b.scaler.dequantize
    with pytest.raises(ConfigError, match="unknown option"):
        build_dataset(DataConfig("deadleaves", {"colour": 3}, n_holdout=2), 0)


def test_texture_train_and_holdout_regions_are_disjoint() -> None:
    cfg = DataConfig("texture", {"texture": "brick", "patch": 8, "holdout_rows": 64}, n_holdout=20)
    b = build_dataset(cfg, 0)
    img = texture_image("brick")
    assert b.info["train_rows"] == [0, 448] and b.info["holdout_rows"] == [448, 480]

    def rows_of(patch: np.ndarray) -> set[int]:
        hits = set()
        for y in range(img.shape[0] - 7):
            for x in np.nonzero(img[y, :505] == patch[0, 0])[0]:
                if np.array_equal(img[y : y + 8, x : x + 8], patch):
                    hits.add(y)
        return hits

    for p in b.holdout[:3, 0].numpy().astype(np.uint8):
        assert rows_of(p) and min(rows_of(p)) >= 448
    train = b.draw_train(3, torch.Generator().manual_seed(0))[:, 0].numpy().astype(np.uint8)
    for p in train:
        assert rows_of(p) and max(rows_of(p)) <= 448 - 8
    with pytest.raises(ConfigError, match="texture"):
        build_dataset(DataConfig("texture", {"texture": "bark"}, n_holdout=2), 0)
    with pytest.raises(ConfigError):
        random_patches(img, (0, 4), 8, 1, np.random.default_rng(0))


def test_digits() -> None:
    b = build_dataset(DataConfig("digits", {}, n_train=0, n_holdout=100), 3)
    assert b.shape == (1, 8, 8) and b.info["levels"] == 17
    assert b.train.shape[0] == 1797 - 297 - 100 and b.holdout.max() <= 16  # 297: test split
    assert abs(b.scaler.to_model(b.train).var().item() - 1) < 0.05


# --------------------------------------------------------------------------- MNIST, IDX
def write_idx(path: Path, arr: np.ndarray, *, gz: bool = False) -> Path:
    head = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    raw = head + arr.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)
    return path


def test_mnist_from_idx_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte", train)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", test, gz=True)
    assert np.array_equal(read_idx(tmp_path / "train-images-idx3-ubyte"), train)
    cfg = DataConfig("mnist", {"root": str(tmp_path), "download": False}, n_train=0, n_holdout=5)
    b = build_dataset(cfg, 0)
    # validation: the last sixth of the training file (2 of 12), never trained on; the test
    # file is only the test split's (a bundle holding a t10k image would leak it into tuning)
    assert b.shape == (1, 28, 28) and b.train.shape[0] == 10 and b.holdout.shape[0] == 2
    assert torch.equal(b.train[:, 0].to(torch.uint8), torch.from_numpy(train[:10]))
    held = sorted(map(bytes, b.holdout[:, 0].to(torch.uint8).numpy()))
    assert held == sorted(map(bytes, train[10:]))
    split = load_test_split(cfg, 4)
    got = {bytes(a) for a in split.x[:, 0].to(torch.uint8).numpy()}
    assert len(got) == 4 and got <= {bytes(a) for a in test}
    assert split.seed == TEST_SEED and "test files" in split.how


def test_bad_idx_files_raise(tmp_path: Path) -> None:
    bad = tmp_path / "x"
    bad.write_bytes(b"\x00\x00\x09\x03abc")
    with pytest.raises(DatasetFilesError, match="magic"):
        read_idx(bad)
    arr = np.zeros((5, 4, 4), np.uint8)
    p = write_idx(tmp_path / "y", arr)
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(DatasetFilesError, match="truncated"):
        read_idx(p)


def test_missing_files_without_download_say_where(tmp_path: Path) -> None:
    for name in ("mnist", "cifar10"):
        cfg = DataConfig(name, {"root": str(tmp_path / "none"), "download": False}, n_holdout=2)
        with pytest.raises(ConfigError, match="not found in") as info:
            build_dataset(cfg, 0)
        assert str(tmp_path / "none") in str(info.value)


# ----------------------------------------------------------------------------- CIFAR
def write_cifar(path: Path, data: np.ndarray) -> None:
    with path.open("wb") as fh:
        pickle.dump({b"data": data.reshape(len(data), -1), b"labels": [0] * len(data)}, fh)


def test_cifar_from_python_batches(tmp_path: Path) -> None:
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    rng = np.random.default_rng(1)
    chw = rng.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)
    for i in range(1, 6):
        write_cifar(root / f"data_batch_{i}", chw)
    write_cifar(root / "test_batch", chw[:4])
    img = read_cifar_batch(root / "test_batch")
    assert img.shape == (4, 32, 32, 3)
    assert np.array_equal(img[2, 5, 7], chw[2, :, 5, 7])  # CHW rows -> HWC
    b = build_dataset(
        DataConfig("cifar10", {"root": str(tmp_path), "download": False}, n_train=0, n_holdout=3), 0
    )
    # validation: the last tenth of the training batches (3 of 30), never trained on
    assert b.shape == (3, 32, 32) and b.train.shape == (27, 3, 32, 32)
    assert b.holdout.shape == (3, 3, 32, 32)
    assert torch.equal(b.train[0].to(torch.uint8), torch.from_numpy(chw[0]))
    tail = {bytes(a) for a in chw[3:]}
    assert {bytes(a) for a in b.holdout.to(torch.uint8).numpy()} <= tail
    split = load_test_split(b_cfg := DataConfig("cifar10", {"root": str(tmp_path)}), 9)
    assert split.x.shape == (4, 3, 32, 32) and b_cfg.name == "cifar10"  # all 4 test images


def test_cifar_refuses_arbitrary_pickles(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": Evil()}))
    with pytest.raises(DatasetFilesError, match="refusing"):
        read_cifar_batch(path)
    path.write_bytes(b"\x80\x04garbage")
    with pytest.raises(DatasetFilesError):
        read_cifar_batch(path)


# ------------------------------------------------------------------------ user images
def _png(arr: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def test_folder_and_zip_of_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    arrays = [rng.integers(0, 256, (20, 30, 3), dtype=np.uint8) for _ in range(4)]
    (folder / "a.png").write_bytes(_png(arrays[0]))
    (folder / "b.jpg").write_bytes(_png(arrays[1], "JPEG"))
    (folder / "sub" / "c.PNG").write_bytes(_png(arrays[2]))
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(_png(arrays[3])[:40])
    imgs, names = read_image_collection(folder, (10, 12), "RGB")
    assert imgs.shape == (3, 10, 12, 3) and names == ["a.png", "b.jpg", "sub/c.PNG"]
    grey, _ = read_image_collection(folder, (8, 8), "L")
    assert grey.shape == (3, 8, 8)
    zpath = tmp_path / "imgs.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for k in range(3):
            zf.writestr(f"x/{k}.png", _png(arrays[k]))
        zf.writestr("__MACOSX/x/._0.png", b"junk")
    zimgs, znames = read_image_collection(zpath, (10, 12), "RGB")
    assert zimgs.shape == (3, 10, 12, 3) and znames == ["x/0.png", "x/1.png", "x/2.png"]
    b = build_dataset(
        DataConfig("images", {"path": str(zpath), "size": [10, 12], "mode": "RGB"}, n_holdout=1), 0
    )
    assert b.shape == (3, 10, 12) and b.train.shape[0] == 2 and b.holdout.shape[0] == 1


def test_images_dataset_rejects_bad_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="path"):
        build_dataset(DataConfig("images", {}, n_holdout=1), 0)
    with pytest.raises(ConfigError, match="not a folder"):
        build_dataset(DataConfig("images", {"path": str(tmp_path / "no")}, n_holdout=1), 0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no readable"):
        build_dataset(DataConfig("images", {"path": str(tmp_path / "empty")}, n_holdout=1), 0)
    with pytest.raises(ConfigError, match="mode"):
        build_dataset(DataConfig("images", {"path": str(tmp_path), "mode": "CMYK"}, n_holdout=1), 0)


def _dead_leaves_by_loops(n: int, p: DeadLeavesParams, rng: np.random.Generator) -> np.ndarray:
    """The generator's definition, one image and one disk at a time (no blocks, no arrays
    of (disk, pixel) pairs): each disk paints the pixels it covers that no nearer disk has.
    It draws its random numbers in the generator's order, so the two must agree exactly."""
    from diffusion.data.image_deadleaves import _visible_radii

    s, chunk = p.size, 32
    centre = np.arange(s) + 0.5
    value, covered = np.zeros((n, s, s)), np.zeros((n, s, s), dtype=bool)
    todo, drawn = list(range(n)), 0
    while todo and drawn < p.max_disks:
        m = len(todo)
        r = _visible_radii(m * chunk, p, rng).reshape(m, chunk)
        cy = -r + rng.random((m, chunk)) * (s + 2 * r)
        cx = -r + rng.random((m, chunk)) * (s + 2 * r)
        grey = rng.random((m, chunk))
        for j, i in enumerate(todo):
            for d in range(chunk):
                for y in range(s):
                    for x in range(s):
                        inside = (centre[y] - cy[j, d]) ** 2 + (centre[x] - cx[j, d]) ** 2
                        if inside <= r[j, d] ** 2 and not covered[i, y, x]:
                            value[i, y, x], covered[i, y, x] = grey[j, d], True
        drawn += chunk
        todo = [i for i in todo if not covered[i].all()]
    assert not todo  # these sizes never reach the cap
    return np.minimum(np.floor(value * 256.0), 255).astype(np.uint8)


def test_dead_leaves_match_the_definition_in_every_block_size() -> None:
    """Catches a block that reads or writes another block's images (covered[sl] for
    covered[idx]), a block whose painting is not written back, and images that depend on
    the block size: the loop reference, block sizes of 1, 3 and all images, must agree."""
    p = DeadLeavesParams(size=6, r_min=1.0, r_max=6.0)
    want = _dead_leaves_by_loops(7, p, np.random.default_rng(3))
    for max_elements in (1, 3 * 32 * 36, 1 << 22):
        got = dead_leaves(7, p, np.random.default_rng(3), max_elements=max_elements)
        np.testing.assert_array_equal(got, want, err_msg=f"max_elements={max_elements}")


def test_dead_leaves_memory_stays_bounded() -> None:
    """64 images of 32 x 32 tested against 32 disks at once would hold float64 (disk, pixel)
    arrays of 16 MB each; in blocks of 4 images the peak must stay a few MB. Catches a
    generator that ignores `max_elements` (the 24 GB run at 64 x 64 x 20,000)."""
    import tracemalloc

    p = DeadLeavesParams(size=32, r_min=1.0, r_max=32.0)
    tracemalloc.start()
    try:
        dead_leaves(64, p, np.random.default_rng(0), max_elements=4 * 32 * 32 * 32)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6e6, f"peak {peak / 1e6:.1f} MB"

"""One set of rules for every door: the command line and the engine refuse what the web path
refuses (size, pixels, zip bombs, zip-slip, file counts, identical images)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusion.config import ConfigError, DataConfig
from diffusion.data import build_dataset
from diffusion.data.image_files import read_image_collection
from diffusion.images import limits
from diffusion.images.imageio import ImageInputError, read_image_checked


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_the_engine_and_the_web_path_share_their_numbers() -> None:
    from dashboard import uploads
    from db import media

    assert limits.MAX_FILE_BYTES == media.MAX_UPLOAD_BYTES == 20 * 1024 * 1024
    assert limits.MAX_PIXELS == media.MAX_PIXELS
    assert limits.MAX_ZIP_FILES == uploads.MAX_TRAINING_IMAGES
    assert limits.MAX_ZIP_TOTAL_BYTES == uploads.MAX_ZIP_BYTES


def test_a_60_mb_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(_png(np.zeros((8, 8), np.uint8)) + b"\0" * (60 * 1024 * 1024))
    with pytest.raises(ImageInputError, match=r"60\.0 MiB.*20\.0 MiB"):
        read_image_checked(big, (8, 8), 1)
    with pytest.raises(ImageInputError, match="20.0 MiB"):
        read_image_checked(big.read_bytes(), (8, 8), 1)


def _zip(path: Path, members: dict[str, bytes], *, compress: bool = True) -> Path:
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_zip_bomb_slip_and_file_count_are_refused(tmp_path: Path, monkeypatch) -> None:
    img = _png(np.arange(64, dtype=np.uint8).reshape(8, 8))
    bomb = _zip(tmp_path / "bomb.zip", {"a.png": img, "b.png": b"\0" * (300 * 1024 * 1024)})
    with pytest.raises(limits.LimitError, match="unpacks to 300"):
        list(limits.zip_members(bomb, (".png",)))
    slip = _zip(tmp_path / "slip.zip", {"a.png": img, "../../etc/evil.png": img})
    with pytest.raises(limits.LimitError, match="escapes the folder"):
        list(limits.zip_members(slip, (".png",)))
    monkeypatch.setattr(limits, "MAX_ZIP_FILES", 5)
    many = _zip(tmp_path / "many.zip", {f"{i}.png": img for i in range(6)})
    with pytest.raises(limits.LimitError, match="6 files; at most 5"):
        list(limits.zip_members(many, (".png",), max_files=limits.MAX_ZIP_FILES))


def test_a_header_that_lies_stops_at_the_cap(tmp_path: Path) -> None:
    path = _zip(tmp_path / "liar.zip", {"a.png": b"\0" * (25 * 1024 * 1024)})
    raw = bytearray(path.read_bytes())
    # shrink the declared size in the central directory and local header to 1 KiB
    real = (25 * 1024 * 1024).to_bytes(4, "little")
    raw = raw.replace(real, (1024).to_bytes(4, "little"))
    path.write_bytes(bytes(raw))
    with pytest.raises((limits.LimitError, zipfile.BadZipFile)):
        list(limits.zip_members(path, (".png",)))


def test_the_images_data_set_applies_the_rules(tmp_path: Path) -> None:
    img = _png(np.arange(64, dtype=np.uint8).reshape(8, 8))
    slip = _zip(tmp_path / "slip.zip", {"a.png": img, "../b.png": img})
    with pytest.raises(ConfigError, match="escapes the folder"):
        build_dataset(DataConfig("images", {"path": str(slip), "size": 8}, n_holdout=1), 0)
    same = _zip(tmp_path / "same.zip", {f"{i}.png": img for i in range(5)})
    with pytest.raises(ConfigError, match="5 image.s. are 1 distinct"):
        build_dataset(DataConfig("images", {"path": str(same), "size": 8}, n_holdout=1), 0)
    images, _ = read_image_collection(same, (8, 8), "L")
    assert images.shape == (5, 8, 8)


def test_the_web_path_refuses_identical_images_too(tmp_path: Path) -> None:
    from dashboard.uploads import prepare_image_folder
    from db.entities import User
    from db.media import MediaError

    class F:
        def __init__(self, name: str, data: bytes) -> None:
            self.name, self._data = name, data

        def getvalue(self) -> bytes:
            return self._data

    img = _png(np.arange(64, dtype=np.uint8).reshape(8, 8))
    owner = User(1, "ada", False, False, None)  # type: ignore[arg-type]
    with pytest.raises(MediaError, match="all the same picture"):
        prepare_image_folder([F(f"{i}.png", img) for i in range(5)], owner, root=tmp_path)


def test_a_local_folder_may_hold_more_images_than_a_zip(tmp_path: Path, monkeypatch) -> None:
    """A training folder on the machine is no upload: the zip's file cap does not apply to it
    (MNIST holds 70,000 images), only the folder cap, which bounds the decoded array."""
    from diffusion.data.image_files import read_image_collection

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(7):
        (folder / f"{i}.png").write_bytes(_png(np.full((8, 8), 30 * i, dtype=np.uint8)))
    monkeypatch.setattr(limits, "MAX_ZIP_FILES", 5)
    arrays, names = read_image_collection(folder, (8, 8), "L")
    assert arrays.shape == (7, 8, 8) and names[0] == "0.png"
    monkeypatch.setattr("diffusion.data.image_files.MAX_FOLDER_FILES", 6)
    with pytest.raises(Exception, match="7 images; at most 6"):
        read_image_collection(folder, (8, 8), "L")

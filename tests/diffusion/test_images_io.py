"""Reading user images and masks with checks (diffusion/imageio.py)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusion.imageio import (
    ImageInputError,
    load_image,
    read_image_checked,
    read_mask,
    save_png,
    tile,
    to_data,
    to_uint8,
)


def png(arr: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    (Image.fromarray(arr, mode) if mode else Image.fromarray(arr)).save(buf, format=fmt)
    return buf.getvalue()


GREY = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
RGB = np.stack([GREY, 255 - GREY, GREY // 2], -1)
NOISE = np.random.default_rng(0).integers(0, 256, (6, 8), dtype=np.uint8)  # incompressible


def test_reads_grey_and_rgb_exactly(tmp_path: Path) -> None:
    p = tmp_path / "g.png"
    p.write_bytes(png(GREY))
    assert np.array_equal(read_image_checked(p, (6, 8), 1), GREY)
    assert np.array_equal(read_image_checked(png(RGB), (6, 8), 3), RGB)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"", "empty"),
        (b"hello, not an image", "not a readable image"),
        (png(NOISE)[:80], "truncated or corrupt"),
        (png(GREY[:5]), "5"),  # wrong size: 8 x 5
        (png(RGB), "RGB .3 channels. but the model takes greyscale"),
    ],
)
def test_rejects_bad_inputs(payload: bytes, match: str) -> None:
    with pytest.raises(ImageInputError, match=match):
        read_image_checked(payload, (6, 8), 1)


def test_rejects_grey_for_colour_model_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match="greyscale .1 channel. but the model takes RGB"):
        read_image_checked(png(GREY), (6, 8), 3)
    with pytest.raises(ImageInputError, match="no such file"):
        read_image_checked(tmp_path / "missing.png", (6, 8), 1)


def test_rejects_animated_images() -> None:
    frames = [Image.fromarray(GREY), Image.fromarray(255 - GREY)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageInputError, match="animated"):
        read_image_checked(buf.getvalue(), (6, 8), 1)


def test_sixteen_bit_palette_and_alpha_are_converted() -> None:
    sixteen = Image.fromarray(GREY.astype(np.uint16) * 257)
    buf = io.BytesIO()
    sixteen.save(buf, format="PNG")
    assert np.abs(read_image_checked(buf.getvalue(), (6, 8), 1).astype(int) - GREY).max() <= 1
    rgba = np.concatenate([RGB, np.full((6, 8, 1), 128, np.uint8)], -1)
    assert np.array_equal(read_image_checked(png(rgba), (6, 8), 3), RGB)
    pal = Image.fromarray(RGB).quantize(8)
    buf = io.BytesIO()
    pal.save(buf, format="PNG")
    assert read_image_checked(buf.getvalue(), (6, 8), 3).shape == (6, 8, 3)
    assert load_image(png(RGB), "L", (3, 4)).shape == (3, 4)


def test_masks() -> None:
    m = np.full((6, 8), 255, np.uint8)
    m[2:4, 3:6] = 0
    mask = read_mask(png(m), (6, 8))
    assert mask.dtype == bool and mask.sum() == 48 - 6 and not mask[2, 3]
    with pytest.raises(ImageInputError, match="mask is 8 x 6"):
        read_mask(png(m), (8, 8))
    with pytest.raises(ImageInputError, match="hides nothing"):
        read_mask(png(np.full((6, 8), 255, np.uint8)), (6, 8))
    with pytest.raises(ImageInputError, match="hides every pixel"):
        read_mask(png(np.zeros((6, 8), np.uint8)), (6, 8))


def test_data_space_round_trip_and_png(tmp_path: Path) -> None:
    assert np.array_equal(to_uint8(to_data(GREY)), GREY)
    d17 = to_data(GREY, 17)
    assert d17.min() >= 0 and d17.max() < 17
    assert np.array_equal(to_uint8(d17, 17), GREY)
    out = tmp_path / "t.png"
    save_png(out, tile(np.stack([GREY, GREY]), cols=2))
    assert np.asarray(Image.open(out)).shape == (6, 17)
    assert not list(tmp_path.glob(".*tmp"))

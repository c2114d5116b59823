"""Reading user images and masks with checks (diffusion/images/imageio.py)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusion.images.imageio import (
    ImageInputError,
    grid,
    load_image,
    make_mask,
    png_bytes,
    points_picture,
    read_image_checked,
    read_mask,
    save_png,
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
        (b"hello, not an image", "not an image that can be read"),
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
    on_white = RGB * (128 / 255) + 255 * (1 - 128 / 255)  # alpha flattened onto white
    assert np.abs(read_image_checked(png(rgba), (6, 8), 3) - on_white).max() <= 1
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
    save_png(out, grid(np.stack([GREY, GREY]), columns=2))
    assert np.asarray(Image.open(out)).shape == (8, 19)  # 1-pixel borders around both
    assert not list(tmp_path.glob(".*tmp"))


def test_grid_places_every_image_with_borders() -> None:
    """One grid builder (skimage.util.montage): image k at row k // cols, column k % cols."""
    images = np.stack([np.full((4, 3), 10 * k, np.uint8) for k in range(5)])
    g = grid(images)  # 3 columns (about square), 2 rows, 1-pixel borders of white
    assert g.shape == (2 * 5 + 1, 3 * 4 + 1) and g.dtype == np.uint8
    for k in range(5):
        r, c = divmod(k, 3)
        assert (g[1 + 5 * r : 5 + 5 * r, 1 + 4 * c : 4 + 4 * c] == 10 * k).all()
    assert (g[0] == 255).all() and (g[6:10, 9:12] == 255).all()  # border, the empty sixth slot
    rgb = grid(np.zeros((2, 4, 3, 3)) + 7.6, columns=1, pad=2)
    assert rgb.shape == (2 * 6 + 2, 3 + 4, 3) and rgb[2, 2].tolist() == [8, 8, 8]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(g)))), g)
    one = np.asarray(Image.open(io.BytesIO(png_bytes(np.full((2, 2, 1), 300.0)))))
    assert one.shape == (2, 2) and (one == 255).all()


def test_masks_keep_their_geometry_on_odd_sizes() -> None:
    c = make_mask("center", (5, 7))  # side min(5, 7) // 2 = 2, centred: rows 1-2, columns 2-3
    assert (~c).sum() == 4 and not c[1:3, 2:4].any()
    assert np.array_equal(make_mask("centre", (5, 7)), c)
    r = make_mask("rectangle", (10, 10), rect=(0.0, 0.5, 0.2, 0.4))
    assert (~r).sum() == 5 * 2 and not r[:5, 2:4].any()
    a, b = make_mask("random", (20, 20), seed=3), make_mask("random", (20, 20), seed=4)
    assert np.array_equal(a, make_mask("random", (20, 20), seed=3)) and not np.array_equal(a, b)
    with pytest.raises(ImageInputError, match="center size"):
        make_mask("center", (4, 4), size=5)


def test_points_picture_puts_each_point_where_it_belongs() -> None:
    """One scatter picture: the points' box is scaled to 90% of the side, y upwards."""
    pic = points_picture(np.array([[0.0, 0.0], [1.0, 1.0], [np.nan, 3.0]]), size=101)
    assert pic.shape == (101, 101, 3) and pic.dtype == np.uint8
    blue = (pic == (31, 119, 180)).all(axis=2)
    assert blue[95, 5] and blue[5, 95]  # (0, 0) bottom left, (1, 1) top right
    assert not blue[5, 5] and not blue[95, 95] and not blue[50, 50]
    assert (points_picture(np.zeros((0, 2)), size=8) == 255).all()

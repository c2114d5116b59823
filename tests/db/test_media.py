"""Upload checks by content (db/media.py): each bad file gets a clear MediaError."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from db.media import (
    MediaError,
    inspect_image,
    load_image,
    make_thumbnail,
    safe_zip_images,
    to_png,
)


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _gradient(w: int = 16, h: int = 12) -> np.ndarray:
    return (np.arange(w * h).reshape(h, w) * 255 // (w * h - 1)).astype(np.uint8)


def test_png_roundtrip_greyscale_and_rgb():
    arr = _gradient()
    data = _save(Image.fromarray(arr), "PNG")
    info = inspect_image(data)
    assert (info.format, info.media_type, info.width, info.height) == ("PNG", "image/png", 16, 12)
    assert info.notes == ()
    np.testing.assert_array_equal(load_image(data, "L"), arr)
    rgb = load_image(data, "RGB")
    assert rgb.shape == (12, 16, 3) and rgb.dtype == np.uint8


def test_type_is_read_from_content_not_name():
    with pytest.raises(MediaError, match="not an image"):
        inspect_image(b"%PDF-1.4 this is not a picture at all" * 10)
    with pytest.raises(MediaError, match="empty"):
        inspect_image(b"")


def test_size_cap_and_pixel_cap():
    data = _save(Image.fromarray(_gradient(64, 64)), "PNG")
    with pytest.raises(MediaError, match="uploads up to"):
        inspect_image(data, max_bytes=10)
    with pytest.raises(MediaError, match="decompression bombs"):
        inspect_image(data, max_pixels=1000)


def test_decompression_bomb_is_refused_before_decoding():
    # a 6000 x 6000 PNG of zeros compresses to a few tens of KiB
    bomb = _save(Image.new("L", (6000, 6000)), "PNG")
    assert len(bomb) < 200_000
    with pytest.raises(MediaError, match="at most 25,000,000 pixels"):
        load_image(bomb)
    # a header that claims more than Pillow's own limit is refused at open
    png = bytearray(_save(Image.new("L", (1, 1)), "PNG"))
    png[16:24] = (20000).to_bytes(4, "big") * 2  # IHDR width and height (CRC now wrong)
    with pytest.raises(MediaError):
        inspect_image(bytes(png))


def test_truncated_and_corrupt_files():
    data = _save(Image.fromarray(_gradient(64, 64)), "JPEG")
    with pytest.raises(MediaError, match="truncated|corrupt"):
        inspect_image(data[: len(data) // 2])
    png = bytearray(_save(Image.fromarray(_gradient(64, 64)), "PNG"))
    png[60:80] = b"\xff" * 20  # break the compressed data
    with pytest.raises(MediaError):
        inspect_image(bytes(png))


def test_sixteen_bit_scaled_to_eight():
    arr16 = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 257).astype(np.uint16)
    data = _save(Image.fromarray(arr16), "PNG")
    info = inspect_image(data)
    assert any("bit depth" in n for n in info.notes)
    out = load_image(data, "L")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out.ravel(), np.arange(256))


def test_palette_with_transparency_and_alpha():
    pal = Image.fromarray(_gradient()).convert("P")
    info = inspect_image(_save(pal, "PNG"))
    assert any("palette" in n for n in info.notes)
    assert load_image(_save(pal, "PNG"), "RGB").shape == (12, 16, 3)
    rgba = Image.new("RGBA", (4, 4), (0, 0, 0, 0))  # fully transparent black
    out = load_image(_save(rgba, "PNG"), "RGB")
    assert (out == 255).all()  # flattened onto white
    assert any("alpha" in n for n in inspect_image(_save(rgba, "PNG")).notes)


def test_cmyk_jpeg():
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red in CMYK
    data = _save(cmyk, "JPEG")
    info = inspect_image(data)
    assert info.mode == "CMYK" and any("CMYK" in n for n in info.notes)
    out = load_image(data, "RGB")
    assert out[..., 0].mean() > 200 and out[..., 1].mean() < 60


def test_exif_rotation_is_applied():
    img = Image.fromarray(np.zeros((10, 20), np.uint8))  # 20 wide, 10 high
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    data = _save(img, "JPEG", exif=exif.tobytes())
    info = inspect_image(data)
    assert info.exif_orientation == 6 and any("EXIF" in n for n in info.notes)
    assert load_image(data).shape == (20, 10)


def test_animated_gif_uses_first_frame():
    frames = [Image.new("L", (8, 8), v) for v in (10, 200, 90)]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    info = inspect_image(data)
    assert info.n_frames == 3 and any("3 frames" in n for n in info.notes)
    out = load_image(data)
    assert out.shape == (8, 8) and abs(int(out.mean()) - 10) <= 2


def test_thumbnail_is_png_with_long_side_size():
    small = _save(Image.fromarray(_gradient(28, 14)), "PNG")
    thumb = Image.open(io.BytesIO(make_thumbnail(small, size=128)))
    assert thumb.format == "PNG" and thumb.size == (128, 64)
    big = _save(Image.new("RGB", (600, 300), (10, 20, 30)), "JPEG")
    thumb = Image.open(io.BytesIO(make_thumbnail(big, size=64)))
    assert thumb.size == (64, 32) and thumb.mode == "RGB"
    with pytest.raises(MediaError):
        make_thumbnail(b"not an image")


def test_to_png_roundtrip():
    arr = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(load_image(to_png(arr), "RGB"), arr)


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in entries.items():
            zf.writestr(name, content)
    return buf.getvalue()


def test_zip_of_images():
    png = _save(Image.fromarray(_gradient()), "PNG")
    junk = {"__MACOSX/._one.png": b"junk", ".DS_Store": b"x"}
    data = _zip({"a/one.png": png, "two.png": png, **junk})
    members = safe_zip_images(data, max_files=10, max_total_bytes=10_000_000)
    assert [m.name for m in members] == ["a/one.png", "two.png"]
    assert members[0].info.width == 16


@pytest.mark.parametrize("bad", ["../evil.png", "/etc/evil.png", "a/../../evil.png", "C:\\x.png"])
def test_zip_slip_is_refused(bad):
    png = _save(Image.fromarray(_gradient()), "PNG")
    with pytest.raises(MediaError, match="escapes"):
        safe_zip_images(_zip({bad: png}), max_files=10, max_total_bytes=10_000_000)


def test_zip_limits_and_bad_members():
    png = _save(Image.fromarray(_gradient()), "PNG")
    many = _zip({f"{i}.png": png for i in range(6)})
    with pytest.raises(MediaError, match="holds 6 files; at most 5"):
        safe_zip_images(many, max_files=5, max_total_bytes=10_000_000)
    with pytest.raises(MediaError, match="unpacks to"):
        safe_zip_images(_zip({"z.png": png, "big.bin": b"\0" * 100_000}), 10, 60_000)
    with pytest.raises(MediaError, match="'notes.txt'.*not an image"):
        safe_zip_images(_zip({"a.png": png, "notes.txt": b"hello"}), 10, 10_000_000)
    with pytest.raises(MediaError, match="not a readable zip"):
        safe_zip_images(b"PK\x03\x04 broken", 10, 10_000_000)
    with pytest.raises(MediaError, match="no images"):
        safe_zip_images(_zip({".DS_Store": b"x"}), 10, 10_000_000)

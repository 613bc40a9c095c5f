"""Robust decoding (EXIF orientation, grayscale, RGBA, palette, CMYK, 16-bit, corrupt files) and
path expansion of ``faceattr.faces.images``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceattr.faces.images import (
    ImageDecodeError,
    array_to_rgb,
    decode_image,
    expand_paths,
)

RED, BLUE = (255, 0, 0), (0, 0, 255)
EXIF_ORIENTATION = 0x0112


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), BLUE)
    image.paste(RED, (0, 0, 20, 20))  # stored: red left half, blue right half
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # shown rotated 90 degrees clockwise: red on top
    path = tmp_path / "rotated.jpg"
    image.save(path, quality=95, exif=exif)
    pixels = decode_image(path)
    assert pixels.shape == (40, 20, 3) and pixels.dtype == np.uint8
    assert np.abs(pixels[5, 10].astype(int) - RED).max() < 30
    assert np.abs(pixels[35, 10].astype(int) - BLUE).max() < 30


def test_grayscale_palette_and_cmyk_become_rgb() -> None:
    grey = decode_image(encoded(Image.new("L", (8, 6), 77), "PNG"))
    assert grey.shape == (6, 8, 3) and (grey == 77).all()
    palette = Image.new("P", (8, 6), 1)
    palette.putpalette([0, 0, 0, 10, 200, 30])
    assert (decode_image(encoded(palette, "PNG")) == (10, 200, 30)).all()
    cmyk = decode_image(encoded(Image.new("CMYK", (8, 6), (0, 255, 255, 0)), "JPEG", quality=95))
    assert cmyk.shape == (6, 8, 3)
    assert np.abs(cmyk.astype(int) - RED).max() < 30


def test_transparency_is_composited_on_white() -> None:
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[:, :3] = (200, 20, 20, 255)  # opaque red left half, transparent right half
    pixels = decode_image(encoded(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (pixels[:, :3] == (200, 20, 20)).all()
    assert (pixels[:, 3:] == 255).all()
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 0, 0, 255, 0])
    palette.info["transparency"] = 0
    assert (decode_image(encoded(palette, "PNG")) == 255).all()


def test_sixteen_bit_png_is_scaled_to_eight_bits() -> None:
    values = np.array([[0, 257 * 128], [65535, 257 * 3]], dtype=np.uint16)
    data = encoded(Image.fromarray(values), "PNG")
    assert Image.open(io.BytesIO(data)).mode in ("I;16", "I")
    pixels = decode_image(data)
    assert pixels[..., 0].tolist() == [[0, 128], [255, 3]]
    assert (pixels == pixels[..., :1]).all()


def test_path_and_bytes_decode_alike(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "noise.png"
    Image.fromarray(rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)).save(path)
    assert np.array_equal(decode_image(path), decode_image(path.read_bytes()))
    assert np.array_equal(decode_image(str(path)), np.asarray(Image.open(path)))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"certainly not an image, just some text", "not an image"),
        ("truncated", "corrupt image"),
    ],
)
def test_unreadable_data_raises_a_clear_error(content: bytes | str, reason: str) -> None:
    if content == "truncated":
        rng = np.random.default_rng(1)
        whole = encoded(Image.fromarray(rng.integers(0, 256, (64, 64, 3), np.uint8)), "JPEG")
        content = whole[: len(whole) // 2]
    assert isinstance(content, bytes)
    with pytest.raises(ImageDecodeError, match=reason):
        decode_image(content)


def test_missing_file_raises_decode_error(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="cannot read .*missing.jpg"):
        decode_image(tmp_path / "missing.jpg")


def test_arrays_of_every_layout_become_rgb() -> None:
    assert array_to_rgb(np.full((3, 4), 9, np.uint8)).shape == (3, 4, 3)
    assert (array_to_rgb(np.full((3, 4, 1), 9, np.uint8)) == 9).all()
    assert (array_to_rgb(np.full((2, 2), 65535, np.uint16)) == 255).all()
    rgba = np.zeros((2, 2, 4), np.uint8)
    assert (array_to_rgb(rgba) == 255).all()  # fully transparent: white
    with pytest.raises(ValueError, match="float32"):
        array_to_rgb(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        array_to_rgb(np.zeros((2, 2, 5), np.uint8))


def test_expand_paths_takes_files_folders_and_globs_in_order(tmp_path: Path) -> None:
    for name in ("b/2.JPG", "b/sub/1.png", "b/notes.txt", "a.jpeg", "c/3.webp"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    specs = [tmp_path / "b/notes.txt", tmp_path / "b", tmp_path / "*.jpeg", tmp_path / "b/2.JPG"]
    found = expand_paths([str(spec) for spec in specs])
    names = [p.relative_to(tmp_path).as_posix() for p in found]
    assert names == ["b/notes.txt", "b/2.JPG", "b/sub/1.png", "a.jpeg"]
    again = expand_paths([str(tmp_path / "**" / "*.png"), str(tmp_path / "b" / "sub" / "1.png")])
    assert again == [tmp_path / "b/sub/1.png"]
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        expand_paths([str(tmp_path / "a.jpeg"), str(tmp_path / "nothing-here*.jpg")])

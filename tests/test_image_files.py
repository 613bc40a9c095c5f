"""The pixel budget: read from the header before any decoder runs (Pillow, OpenCV), configurable,
with the peak memory of refusing a bomb measured in a fresh process; JPEG draft decoding keeps
the full image's coordinates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from faceattr.data.cache_writer import DECODE_ERRORS, read_rgb
from faceattr.data.check import verify_images
from faceattr.data.dataset import read_image
from faceattr.faces.images import decode_image, decode_photo
from faceattr.image_files import (
    MAX_PIXELS_ENV,
    PixelBudgetError,
    black_png,
    max_pixels,
    opencv_only_size,
)

PEAK = """
import json, resource, sys
from faceattr.faces.images import PixelBudgetError, decode_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    decode_image(sys.argv[1])
    refused = ""
except PixelBudgetError as error:
    refused = str(error)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kb": before, "after_kb": after, "refused": refused}))
"""


def peak_memory(path: Path) -> dict[str, object]:
    """Peak RSS of a fresh process before and after decoding ``path``, and its refusal."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK, str(path)], capture_output=True, text=True, check=True
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("bomb", ["png_bomb", "hdr_bomb"])
def test_a_bomb_is_refused_from_its_header_in_a_few_megabytes(
    bomb: str, request: pytest.FixtureRequest
) -> None:
    path: Path = request.getfixturevalue(bomb)
    assert path.stat().st_size < 30_000
    measured = peak_memory(path)
    assert "megapixels, over the budget of 50" in str(measured["refused"])
    grown_kb = int(str(measured["after_kb"])) - int(str(measured["before_kb"]))
    assert grown_kb < 20_000, measured  # decoding it would take 169 MB (1 byte per pixel) or more


def test_the_budget_is_configurable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, png_bomb: Path
) -> None:
    photo = tmp_path / "photo.png"
    Image.new("RGB", (100, 80)).save(photo)
    assert decode_image(photo).shape == (80, 100, 3)
    monkeypatch.setenv(MAX_PIXELS_ENV, "7999")
    with pytest.raises(PixelBudgetError, match=r"100x80 is 0\.0 megapixels"):
        decode_image(photo)
    monkeypatch.setenv(MAX_PIXELS_ENV, "8000")
    assert decode_image(photo).shape == (80, 100, 3)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match="FACEATTR_MAX_PIXELS must be a positive number"):
        max_pixels()


@pytest.mark.parametrize("suffix", [".hdr", ".pfm", ".pam"])
def test_opencv_formats_are_sized_from_their_header_then_decoded(
    suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pixels = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32)
    image = pixels if suffix != ".pam" else (pixels * 255).astype(np.uint8)
    ok, encoded = cv2.imencode(suffix, image)
    assert ok
    data = encoded.tobytes()
    assert opencv_only_size(data) == (30, 20)
    assert decode_image(data).shape == (20, 30, 3)
    monkeypatch.setenv(MAX_PIXELS_ENV, "599")
    with pytest.raises(PixelBudgetError, match="30x20"):
        decode_image(data)


def test_unknown_content_never_reaches_opencv() -> None:
    assert opencv_only_size(b"GIF89a nothing") is None
    with pytest.raises(ValueError, match="unknown format"):
        decode_image(b"plain text, not an image at all")


def test_a_large_jpeg_decodes_at_a_reduced_size_with_its_full_size(tmp_path: Path) -> None:
    path = tmp_path / "large.jpg"
    Image.new("RGB", (4400, 3000), (90, 120, 150)).save(path, quality=90)
    reduced = decode_photo(path, draft_side=2048)
    assert reduced.pixels.shape == (1500, 2200, 3)
    assert (reduced.width, reduced.height) == (4400, 3000)
    assert reduced.scale == (2.0, 2.0)
    assert decode_photo(path).pixels.shape == (3000, 4400, 3)
    assert decode_photo(path, draft_side=8000).scale == (1.0, 1.0)


def test_the_data_decoders_refuse_a_bomb_as_a_listed_skip(png_bomb: Path) -> None:
    """Training's reader skips it (None), ``data prepare``'s raises a decode error it lists,
    ``data check --verify`` lists it with the reason."""
    assert read_image(str(png_bomb)) is None
    with pytest.raises(PixelBudgetError):
        read_rgb(png_bomb)
    assert isinstance(PixelBudgetError("x"), DECODE_ERRORS)
    [(path, reason)] = verify_images([png_bomb], progress=False)
    assert path == png_bomb and "over the budget of 50" in reason


def test_a_large_image_of_another_format_is_shrunk_before_rgb() -> None:
    decoded = decode_photo(black_png(7000, 5000), draft_side=2048)
    assert decoded.pixels.shape == (1667, 2334, 3)
    assert (decoded.width, decoded.height) == (7000, 5000)
    assert decoded.scale == pytest.approx((3.0, 3.0), rel=1e-3)
    assert decode_photo(black_png(4000, 300), draft_side=2048).pixels.shape == (300, 4000, 3)

"""Photos as the detector and the models want them: decoded robustly to RGB uint8, and paths.

:func:`decode_image` reads a file or its bytes with Pillow (EXIF orientation applied; grayscale,
palette, CMYK, 16-bit and transparent images converted; OpenCV as a fallback for the formats Pillow
does not know) and raises :class:`ImageDecodeError` with the reason when it cannot, or
:class:`PixelBudgetError` for an image over the pixel budget (see :mod:`faceattr.image_files`).
:func:`decode_photo` may decode a large JPEG at a reduced size (Pillow's draft mode: 1/2, 1/4 or
1/8 scale, in the decoder itself) and shrinks any other large image right after decoding, before
its conversion to RGB, keeping the full image's size for coordinates.
:func:`expand_paths` turns files, folders (recursively) and glob patterns into a list of files.
"""

from __future__ import annotations

import glob
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from faceattr.image_files import (
    ImageDecodeError,
    PixelBudgetError,
    check_pixels,
    open_image,
    opencv_only_size,
)

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)
"""File suffixes (lower case) that folders and glob patterns are searched for."""
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
"""Pillow's integer modes of 16-bit grayscale images (PNG's 16-bit grey opens as ``I;16``/``I``)."""
BACKGROUND = (255, 255, 255)
"""What transparent pixels are composited on."""
REDUCIBLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK"})
"""Modes whose pixels :func:`reduced` may average."""
ROTATED_ORIENTATIONS = frozenset({5, 6, 7, 8})
"""EXIF orientations that turn the image by 90 degrees (width and height swap)."""


@dataclass(frozen=True)
class DecodedImage:
    """RGB uint8 ``pixels`` ``(h, w, 3)``, upright, maybe decoded at a reduced size, and the
    ``width`` and ``height`` of the full upright image, in which coordinates are reported."""

    pixels: np.ndarray
    width: int
    height: int

    @property
    def scale(self) -> tuple[float, float]:
        """Full-image pixels per decoded pixel, across and down (1 when not reduced)."""
        height, width = self.pixels.shape[:2]
        return self.width / width, self.height / height


def decode_image(source: str | Path | bytes) -> np.ndarray:
    """An RGB uint8 ``(H, W, 3)`` array of the image file at ``source`` (a path) or in ``source``
    (bytes), upright by its EXIF orientation. Raises :class:`ImageDecodeError` with the reason for
    a missing, empty, truncated or unknown file, :class:`PixelBudgetError` over the budget."""
    return decode_photo(source).pixels


def decode_photo(source: str | Path | bytes, draft_side: int | None = None) -> DecodedImage:
    """:func:`decode_image`, where a JPEG whose longer side exceeds ``draft_side`` is decoded at
    the smallest of 1/2, 1/4 or 1/8 scale that keeps that side at least ``draft_side`` long, and
    an image still twice as long is then shrunk by a whole factor that keeps it so."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as error:
            raise ImageDecodeError(f"cannot read {source}: {error.strerror or error}") from None
    if not data:
        raise ImageDecodeError("empty file")
    try:
        with open_image(io.BytesIO(data)) as image:
            width, height = image.size
            if draft_side is not None and max(width, height) > draft_side:
                factor = draft_side / max(width, height)
                image.draft("RGB", (math.ceil(width * factor), math.ceil(height * factor)))
            image.load()
            if draft_side is not None and max(image.size) >= 2 * draft_side:
                image = reduced(image, max(image.size) // draft_side)
            if image.getexif().get(ExifTags.Base.Orientation) in ROTATED_ORIENTATIONS:
                width, height = height, width
            return DecodedImage(pil_to_rgb(image), width, height)
    except UnidentifiedImageError:
        rgb = _decode_with_opencv(data)
        return DecodedImage(rgb, rgb.shape[1], rgb.shape[0])
    except PixelBudgetError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageDecodeError(f"corrupt image ({error})") from None


def reduced(image: Image.Image, factor: int) -> Image.Image:
    """``image`` shrunk ``factor`` times by averaging (Pillow's ``reduce``) in its own mode, before
    any conversion to RGB multiplies its bytes; palette and 16-bit images are left whole."""
    if image.mode == "1":
        image = image.convert("L")
    if image.mode not in REDUCIBLE_MODES:
        return image
    exif = image.getexif()
    small = image.reduce(factor)
    small.info["exif"] = exif.tobytes()
    return small


def _decode_with_opencv(data: bytes) -> np.ndarray:
    """OpenCV's decoding of ``data`` (which applies EXIF orientation itself), only for the
    formats Pillow does not identify and whose size :func:`opencv_only_size` reads first."""
    size = opencv_only_size(data)
    if size is None:
        raise ImageDecodeError("not an image (unknown format)")
    check_pixels(*size)
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageDecodeError("not an image (unknown format)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def pil_to_rgb(image: Image.Image) -> np.ndarray:
    """An RGB uint8 ``(H, W, 3)`` array of a Pillow image: EXIF orientation applied, 16-bit
    grayscale scaled to 8 bits, transparency composited on white, every other mode converted."""
    image = ImageOps.exif_transpose(image)
    if image.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        grey = np.clip(np.rint(values / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        image = Image.alpha_composite(canvas, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def array_to_rgb(image: np.ndarray) -> np.ndarray:
    """An RGB uint8 ``(H, W, 3)`` array of an ``(H, W)``, ``(H, W, 1)``, RGB or RGBA array, uint8
    or 16-bit (scaled to 8 bits); alpha is composited on white. ``ValueError`` for anything else."""
    array = np.asarray(image)
    if array.dtype == np.uint16:
        array = np.clip(np.rint(array / 257.0), 0, 255).astype(np.uint8)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 or uint16 image array, got {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape[:2]:
        raise ValueError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {array.shape}")
    if array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    if array.shape[2] == 4:
        return pil_to_rgb(Image.fromarray(array, "RGBA"))
    return np.ascontiguousarray(array)


def expand_paths(specs: Sequence[str]) -> list[Path]:
    """The files named by ``specs``, in order and without repeats: a file as given, a folder's
    image files (recursively, sorted), a glob pattern's image files (``**`` recurses, sorted).
    ``FileNotFoundError`` names the specs that match nothing."""
    found: dict[Path, None] = {}
    unmatched = []
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_file():
            matches = [path]
        elif path.is_dir():
            matches = sorted(p for p in path.rglob("*") if _is_image_file(p))
        else:
            pattern = str(path)
            matches = sorted(
                Path(p) for p in glob.glob(pattern, recursive=True) if _is_image_file(Path(p))
            )
        if not matches:
            unmatched.append(spec)
        found.update(dict.fromkeys(matches))
    if unmatched:
        raise FileNotFoundError(f"no image file matches {', '.join(map(repr, unmatched))}")
    return list(found)


def _is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()

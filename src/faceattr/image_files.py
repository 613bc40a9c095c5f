"""Image files read safely: one pixel budget in front of every decoder faceattr uses.

A small file can declare a huge image (a 20 KB 1-bit PNG of 13,000 x 13,000 decodes to 500 MB of
RGB). Every decoder of the project therefore reads the width and height from the file's header
first and refuses an image of more than :func:`max_pixels` pixels (default 50 megapixels, far
above any camera photo's 24-ish; ``$FACEATTR_MAX_PIXELS`` sets it) with a
:class:`PixelBudgetError`, before a pixel is decoded: Pillow through :func:`open_image` (its
``Image.open`` reads only the header), OpenCV only for the formats whose header
:func:`opencv_only_size` reads (Radiance HDR, PFM, PAM: the ones Pillow does not identify).
"""

from __future__ import annotations

import os
import re
import struct
import warnings
import zlib
from typing import IO

from PIL import Image

MAX_PIXELS_ENV = "FACEATTR_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 50_000_000
_HDR_RESOLUTION = re.compile(rb"([-+])([XY]) +(\d+) +([-+])([XY]) +(\d+)")
_PFM_HEADER = re.compile(rb"P[Ff]\s+(\d+)\s+(\d+)\s")
_PAM_FIELD = re.compile(rb"^(WIDTH|HEIGHT)\s+(\d+)\s*$", re.MULTILINE)
HEADER_BYTES = 4096
"""How much of a file the HDR and PAM header readers look at."""


class ImageDecodeError(ValueError):
    """A file or buffer that is no readable image; the message says why."""


class PixelBudgetError(ImageDecodeError):
    """An image whose header declares more pixels than the budget."""


def max_pixels() -> int:
    """The pixel budget: ``$FACEATTR_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{MAX_PIXELS_ENV} must be a positive number of pixels, got {text!r}")
    return int(text)


def check_pixels(width: int, height: int) -> None:
    """:class:`PixelBudgetError` when a ``width`` x ``height`` image is over the budget."""
    budget = max_pixels()
    if width * height > budget:
        raise PixelBudgetError(
            f"{width}x{height} is {width * height / 1e6:.1f} megapixels, over the budget of "
            f"{budget / 1e6:g} ({MAX_PIXELS_ENV})"
        )


def open_image(source: str | os.PathLike[str] | IO[bytes]) -> Image.Image:
    """Pillow's lazy ``Image.open`` of ``source`` (only the header is read), refused with
    :class:`PixelBudgetError` when the header declares more pixels than the budget (this budget
    replaces Pillow's own bomb warning; its bomb error, at twice 89 megapixels, is one too)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(source)
        except Image.DecompressionBombError as error:
            raise PixelBudgetError(str(error)) from None
    try:
        check_pixels(*image.size)
    except PixelBudgetError:
        image.close()
        raise
    return image


def opencv_only_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a Radiance HDR, PFM or PAM file (what OpenCV reads and
    Pillow does not); None for any other content."""
    head = data[:HEADER_BYTES]
    if head.startswith(b"#?"):
        end = head.find(b"\n\n")
        found = _HDR_RESOLUTION.match(head, end + 2) if end >= 0 else None
        if found is None:
            return None
        first, second = int(found.group(3)), int(found.group(6))
        return (second, first) if found.group(2) == b"Y" else (first, second)
    if found := _PFM_HEADER.match(head):
        return int(found.group(1)), int(found.group(2))
    if head.startswith(b"P7"):
        fields = {key: int(value) for key, value in _PAM_FIELD.findall(head)}
        if {b"WIDTH", b"HEIGHT"} <= fields.keys():
            return fields[b"WIDTH"], fields[b"HEIGHT"]
    return None


def black_png(width: int, height: int) -> bytes:
    """A black 1-bit PNG of ``width`` x ``height`` in a few KB (compressed row by row, never held
    whole): the smallest file declaring that many pixels, what the budget is probed with."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\x00" * (1 + (width + 7) // 8)  # the filter byte, then the packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")

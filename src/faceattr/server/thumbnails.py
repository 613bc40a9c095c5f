"""Small JPEG thumbnails of faces: the box widened by a margin, clipped to the image, shrunk."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def face_crop_box(
    box: tuple[float, float, float, float], width: int, height: int, margin: float = 0.25
) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the square around ``box`` (x, y, w, h) widened by
    ``margin`` of its longer side on every side, clipped to a ``width`` x ``height`` image; at
    least one pixel."""
    x, y, w, h = box
    side = max(w, h) * (1 + 2 * margin)
    cx, cy = x + w / 2, y + h / 2
    left = min(max(int(round(cx - side / 2)), 0), width - 1)
    top = min(max(int(round(cy - side / 2)), 0), height - 1)
    right = max(min(int(round(cx + side / 2)), width), left + 1)
    bottom = max(min(int(round(cy + side / 2)), height), top + 1)
    return left, top, right, bottom


def face_thumbnail(
    image: np.ndarray, box: tuple[float, float, float, float], size: int, quality: int = 85
) -> bytes:
    """JPEG bytes of the face at ``box`` in ``image`` (RGB uint8 HxWx3), no side above ``size``."""
    height, width = image.shape[:2]
    crop = Image.fromarray(image).crop(face_crop_box(box, width, height))
    crop.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    crop.save(out, format="JPEG", quality=quality)
    return out.getvalue()

"""In-the-wild images: a drawn person placed at a random position, scale and rotation on clutter."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
from PIL import Image, ImageDraw
from scipy.special import ndtri

from faceattr.data.synth.draw import apply, similarity
from faceattr.data.synth.render import LAYER_ORIGIN, RenderedFace, background, composite

CANVAS_RANGE = (300, 500)  # side lengths of the wild canvas, pixels
SCALE_RANGE = (0.7, 1.6)  # face size relative to the aligned crop
MAX_ROTATION = 30.0  # degrees
_CENTER = (88.0, 131.0)  # aligned point placed on the canvas (between eyes and mouth)


@dataclass(frozen=True, eq=False)
class WildImage:
    """A person on a cluttered canvas, with its five landmarks and where the aligned crop went."""

    image: Image.Image  # RGB
    landmarks: np.ndarray  # (5, 2) canvas coordinates
    matrix: np.ndarray  # (2, 3) aligned coordinates -> canvas coordinates


def clutter(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A busy canvas (h, w, 3) uint8: a smooth colour field under random rectangles, ellipses,
    polygons and lines, drawn at half resolution and enlarged (soft, slightly out of focus)."""
    w, h = size[0] // 2, size[1] // 2
    canvas = background((w, h), rng)
    draw = ImageDraw.Draw(canvas, "RGBA")
    for _ in range(int(rng.integers(10, 28))):
        color = tuple(int(c) for c in rng.integers(0, 256, 3)) + (int(rng.integers(90, 256)),)
        x0, y0 = rng.uniform(-0.1, 1.0) * w, rng.uniform(-0.1, 1.0) * h
        x1, y1 = x0 + rng.uniform(4, 0.5 * w), y0 + rng.uniform(4, 0.5 * h)
        kind = int(rng.integers(4))
        if kind == 0:
            draw.rectangle((x0, y0, x1, y1), fill=color)
        elif kind == 1:
            draw.ellipse((x0, y0, x1, y1), fill=color)
        elif kind == 2:
            pts = rng.uniform((x0, y0), (x1, y1), (int(rng.integers(3, 7)), 2))
            draw.polygon(pts.ravel().tolist(), fill=color)
        else:
            draw.line((x0, y0, x1, y1), fill=color, width=int(rng.integers(1, 5)))
    return cv2.resize(np.asarray(canvas), size, interpolation=cv2.INTER_LINEAR)


@cache
def _noise_tables(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Lookup tables from uniform bytes to the positive and negative parts of Gaussian noise."""
    noise = np.round(sigma * ndtri((np.arange(256) + 0.5) / 256.0))
    return np.maximum(noise, 0).astype(np.uint8), np.maximum(-noise, 0).astype(np.uint8)


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` (h, w, 3) uint8 plus Gaussian luminance noise of standard deviation ``sigma``."""
    h, w = image.shape[:2]
    uniform = np.frombuffer(rng.bytes(h * w), dtype=np.uint8).reshape(h, w)
    up, down = (cv2.LUT(uniform, table) for table in _noise_tables(round(sigma, 1)))
    return cv2.subtract(cv2.add(image, cv2.merge([up, up, up])), cv2.merge([down, down, down]))


def place_in_wild(face: RenderedFace, rng: np.random.Generator) -> WildImage:
    """``face``'s person on a random cluttered canvas (300-500 px a side), rotated by up to 30
    degrees and scaled by 0.7-1.6 with the whole face box inside the canvas, plus sensor noise."""
    width, height = (int(v) for v in rng.integers(CANVAS_RANGE[0], CANVAS_RANGE[1] + 1, 2))
    size = (width, height)
    angle = rng.uniform(-MAX_ROTATION, MAX_ROTATION)
    unit = apply(similarity(1.0, angle, _CENTER, (0.0, 0.0)), face.face_corners) - _CENTER
    extent = unit.max(axis=0) - unit.min(axis=0)
    fit = 0.95 * float(np.min(np.asarray(size) / extent))
    scale = min(fit, rng.uniform(SCALE_RANGE[0], max(SCALE_RANGE[0], min(SCALE_RANGE[1], fit))))
    lo = -unit.min(axis=0) * scale
    hi = np.asarray(size) - unit.max(axis=0) * scale
    center = rng.uniform(lo, np.maximum(lo, hi))
    matrix = similarity(scale, angle, _CENTER, tuple(center - np.asarray(_CENTER)))

    # Warp the person layer (pixel = aligned - LAYER_ORIGIN) into the part of the canvas it covers.
    lh, lw = face.layer.shape[:2]
    outline = apply(matrix, np.array([[0, 0], [lw, 0], [lw, lh], [0, lh]]) + LAYER_ORIGIN)
    x0, y0 = np.clip(np.floor(outline.min(axis=0)), 0, None).astype(int)
    x1, y1 = np.minimum(np.ceil(outline.max(axis=0)), size).astype(int)
    to_region = matrix.copy()
    to_region[:, 2] += matrix[:, :2] @ np.asarray(LAYER_ORIGIN) - (x0, y0)
    person = cv2.warpAffine(
        face.layer,
        to_region,
        (int(x1 - x0), int(y1 - y0)),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0, 0),
    )
    canvas = clutter(size, rng)
    composite(canvas, person, int(x0), int(y0))
    image = add_noise(canvas, rng.uniform(1.0, 5.0), rng)
    return WildImage(
        image=Image.fromarray(image, "RGB"),
        landmarks=apply(matrix, face.landmarks),
        matrix=matrix,
    )

"""Drawing primitives: shapes as point arrays, drawn anti-aliased through one similarity transform.

Shapes are built in aligned-crop coordinates (178x218 units) and drawn by a :class:`Pen` on a
supersampled RGBA layer; the layer is later reduced with premultiplied alpha, which anti-aliases
every edge.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image, ImageDraw

Color = tuple[int, int, int, int]


def rgba(rgb: np.ndarray | tuple[float, ...], alpha: float = 255.0) -> Color:
    """An RGBA tuple from float RGB values (clipped to 0-255)."""
    r, g, b = (int(round(min(255.0, max(0.0, float(v))))) for v in tuple(rgb)[:3])
    return (r, g, b, int(round(min(255.0, max(0.0, alpha)))))


def shade(rgb: np.ndarray, factor: float, alpha: float = 255.0) -> Color:
    """``rgb`` scaled by ``factor`` (darker below 1, lighter above)."""
    return rgba(np.asarray(rgb, dtype=np.float64) * factor, alpha)


def mix(
    a: np.ndarray | tuple[float, ...], b: np.ndarray | tuple[float, ...], t: float
) -> np.ndarray:
    """The colour ``t`` of the way from ``a`` to ``b``."""
    return (1.0 - t) * np.asarray(a, dtype=np.float64) + t * np.asarray(b, dtype=np.float64)


@cache
def _arc(start: float, end: float, n: int) -> np.ndarray:
    a = np.radians(np.linspace(start, end, n))
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def ellipse(
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    start: float = 0.0,
    end: float = 360.0,
    n: int = 40,
) -> np.ndarray:
    """Points on an ellipse from angle ``start`` to ``end`` (degrees, y down), (n, 2)."""
    return _arc(start, end, n) * (rx, ry) + (cx, cy)


def superellipse(
    cx: float, cy: float, rx: float, ry: float, power: float, n: int = 48
) -> np.ndarray:
    """A closed rounded rectangle ``|x/rx|^p + |y/ry|^p = 1``, (n, 2)."""
    a = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(a), np.sin(a)
    x = np.sign(c) * np.abs(c) ** (2.0 / power)
    y = np.sign(s) * np.abs(s) ** (2.0 / power)
    return np.stack([cx + rx * x, cy + ry * y], axis=1)


def similarity(
    scale: float, degrees: float, center: tuple[float, float], shift: tuple[float, float]
) -> np.ndarray:
    """The 2x3 matrix rotating by ``degrees`` and scaling about ``center``, then shifting."""
    t = np.radians(degrees)
    r = scale * np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    c = np.asarray(center, dtype=np.float64)
    return np.hstack([r, (c - r @ c + np.asarray(shift, dtype=np.float64))[:, None]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (..., 2) mapped by the 2x3 affine ``matrix``."""
    return points @ matrix[:, :2].T + matrix[:, 2]


class Pen:
    """Draws shapes given in aligned coordinates onto a supersampled colour image and its mask.

    Translucent fills blend into the colour image and leave the mask alone; opaque ones also set
    the mask while :attr:`silhouette` is on (switch it off for details inside the outline already
    drawn). Colour outside the mask must be discarded when the two are combined.
    """

    def __init__(self, size: tuple[int, int], matrix: np.ndarray) -> None:
        self.color = Image.new("RGB", size)
        self.mask = Image.new("L", size)
        self._draw = ImageDraw.Draw(self.color, "RGBA")
        self._mask = ImageDraw.Draw(self.mask)
        self.matrix = matrix
        self.silhouette = True
        self._scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))

    def _xy(self, points: np.ndarray) -> list[float]:
        return apply(self.matrix, np.asarray(points, dtype=np.float64)).ravel().tolist()

    def polygon(self, points: np.ndarray, fill: Color) -> None:
        """A filled polygon (blended over what is there when ``fill`` is translucent)."""
        xy = self._xy(points)
        self._draw.polygon(xy, fill=fill)
        if fill[3] == 255 and self.silhouette:
            self._mask.polygon(xy, fill=255)

    def line(self, points: np.ndarray, fill: Color, width: float, closed: bool = False) -> None:
        """A polyline ``width`` aligned pixels wide with rounded joints."""
        pts = np.asarray(points, dtype=np.float64)
        if closed:
            pts = np.vstack([pts, pts[:1]])
        w = max(1, int(round(width * self._scale)))
        xy = self._xy(pts)
        self._draw.line(xy, fill=fill, width=w, joint="curve")
        if fill[3] == 255 and self.silhouette:
            self._mask.line(xy, fill=255, width=w, joint="curve")

    def disc(self, cx: float, cy: float, r: float, fill: Color) -> None:
        """A filled circle."""
        self.polygon(ellipse(cx, cy, r, r, n=20), fill)

"""Face boxes and the matrices that crop them: AFFACT alignment, detector boxes, seed 000's crops.

All functions are pure and vectorised over a batch of ``N`` faces; they take and return numpy
float64 arrays. Landmarks are CelebA's five points in file order (``LANDMARK_NAMES``), in source
pixel coordinates; each matrix maps source pixels to output crop pixels (see
``faceattr.geometry.affine``), so a crop's landmarks are ``transform_points(matrix, landmarks)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from faceattr.geometry.affine import Size, as_hw, similarity_matrix

LANDMARK_NAMES = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")
"""CelebA's landmark order; "left" is the image's left (the person's right)."""
MIRROR_ORDER = (1, 0, 2, 4, 3)
"""Landmark order after a horizontal flip: left and right eyes and mouth corners swap."""

AFFACT_BOX_SIDE = 5.5
"""Box side over the eye-centre to mouth-centre distance (seed 003 eq. 3.2). The seed's text names
a constant without its value; 5.5 is the value of the AFFACT reference reimplementation."""
AFFACT_ABOVE_EYES = 0.45
"""Part of the box height above the eye centre (eq. 3.3); the other 0.55 lies below it."""


@dataclass(frozen=True)
class FaceBox:
    """A batch of face boxes, possibly rotated.

    ``center`` is ``(N, 2)`` source pixels, ``size`` ``(N, 2)`` as (width, height), ``angle``
    ``(N,)`` radians: the box's x axis points along ``(cos angle, sin angle)`` in the source.
    """

    center: np.ndarray
    size: np.ndarray
    angle: np.ndarray

    def __len__(self) -> int:
        return int(self.center.shape[0])


def _points(values: np.ndarray, count: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 3 or array.shape[1:] != (count, 2):
        raise ValueError(f"{name} must have shape (N, {count}, 2), got {array.shape}")
    if not np.isfinite(array).all():
        rows = np.unique(np.nonzero(~np.isfinite(array))[0])
        raise ValueError(f"{name} has non-finite values in rows {rows[:10].tolist()}")
    return array


def _boxes_xywh(boxes: np.ndarray) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) = (x, y, width, height), not {array.shape}")
    bad = np.nonzero(~(array[:, 2:] > 0).all(axis=1))[0]
    if bad.size:
        raise ValueError(f"boxes need a positive width and height; rows {bad[:10].tolist()} do not")
    return array


def affact_box(landmarks: np.ndarray) -> FaceBox:
    """The AFFACT face box of seed 003 section 3.2.1 from ``(N, 5, 2)`` landmarks.

    Eye centre ``e`` and mouth centre ``m`` are the means of the two eyes and the two mouth
    corners (eq. 3.1 prints differences, a typo); ``d = |e - m|``; the box is square with side
    ``AFFACT_BOX_SIDE * d`` (eq. 3.2), centred on ``e`` horizontally, reaching ``0.45 h`` above and
    ``0.55 h`` below it (eq. 3.3); its angle is the eye line's (eq. 3.4, as ``arctan2``). Unlike
    the reference, which shifts the centre along the image's y axis, "below" here is along the
    face's own vertical axis, so the crop of a rotated face equals the crop of the upright one.
    """
    points = _points(landmarks, 5, "landmarks")
    eyes = (points[:, 0] + points[:, 1]) / 2.0
    mouth = (points[:, 3] + points[:, 4]) / 2.0
    side = AFFACT_BOX_SIDE * np.linalg.norm(eyes - mouth, axis=1)
    eye_line = points[:, 1] - points[:, 0]
    angle = np.arctan2(eye_line[:, 1], eye_line[:, 0])
    down = np.stack([-np.sin(angle), np.cos(angle)], axis=1)
    center = eyes + ((0.5 - AFFACT_ABOVE_EYES) * side)[:, None] * down
    return FaceBox(center=center, size=np.stack([side, side], axis=1), angle=angle)


def face_box_matrix(boxes: FaceBox, out_size: Size, scale: float = 1.0) -> np.ndarray:
    """Matrices cropping each box, upright, into ``out_size`` (Algorithm 2, steps 6-7).

    The box is first scaled by ``scale`` about its centre; then it is rotated level, scaled by
    ``min(crop_w / box_w, crop_h / box_h)`` (whole box visible, aspect kept) and centred.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    height, width = as_hw(out_size)
    box_w, box_h = boxes.size[:, 0] * scale, boxes.size[:, 1] * scale
    factor = np.minimum(width / box_w, height / box_h)
    return similarity_matrix(boxes.center, factor, boxes.angle, (height, width))


def affact_alignment_matrix(landmarks: np.ndarray, out_size: Size = (224, 224)) -> np.ndarray:
    """``(N, 2, 3)`` matrices aligning faces with the AFFACT box of their landmarks."""
    return face_box_matrix(affact_box(landmarks), out_size)


def box_matrix(boxes_xywh: np.ndarray, out_size: Size, scale: float = 1.0) -> np.ndarray:
    """Matrices cropping detector boxes ``(N, 4)`` = (x, y, width, height), scaled about the centre.

    No rotation. Seed 003's test sets D, C and T use ``scale=2`` on MTCNN boxes. The box's
    left edge is at ``x`` and its centre at ``x + width / 2`` in the landmarks' coordinates.
    """
    boxes = _boxes_xywh(boxes_xywh)
    face_boxes = FaceBox(
        center=boxes[:, :2] + boxes[:, 2:] / 2.0,
        size=boxes[:, 2:],
        angle=np.zeros(len(boxes)),
    )
    return face_box_matrix(face_boxes, out_size, scale)


def stretch_matrix(bounds: np.ndarray, out_size: Size) -> np.ndarray:
    """Matrices resizing the slices ``(N, 4)`` = (x_min, y_min, x_max, y_max) onto the whole output.

    A slice ``image[y_min:y_max, x_min:x_max]`` covers the pixel edges ``x_min - 0.5`` to
    ``x_max - 0.5``; they land on the output's edges, as a resize of that slice would (no aspect
    preservation).
    """
    height, width = as_hw(out_size)
    bounds = np.asarray(bounds, dtype=np.float64)
    extent = bounds[:, 2:] - bounds[:, :2]
    bad = np.nonzero(~(extent > 0).all(axis=1))[0]
    if bad.size:
        raise ValueError(f"empty crop in rows {bad[:10].tolist()}: {bounds[bad[0]].tolist()}")
    sx, sy = width / extent[:, 0], height / extent[:, 1]
    zeros = np.zeros_like(sx)
    tx = -sx * (bounds[:, 0] - 0.5) - 0.5
    ty = -sy * (bounds[:, 1] - 0.5) - 0.5
    return np.stack([np.stack([sx, zeros, tx], -1), np.stack([zeros, sy, ty], -1)], axis=1)


SEED000_EPSILON = 0.5
"""Seed 000's epsilon of the type A crop: the nose's relative place in its nose-centred frame."""


def seed000_type_a_bounds(nose: np.ndarray, eps: float = SEED000_EPSILON) -> np.ndarray:
    """Seed 000's "type A" (face focus) slice bounds ``(N, 4)`` from ``(N, 2)`` nose points in
    CelebA's aligned frame.

    The seed prints ``x in [x_n small, x_n grand]``, ``y in [y_n (small - 0.2), y_n (grand -
    0.2)]`` with ``grand = eps + 0.2``, ``small = eps - 0.2``, ``eps = 0.5``, after saying that the
    nose "becomes the center of the image". Taken literally the bounds are 30-70% of ``x_n`` and
    10-50% of ``y_n``: a patch of forehead and hair without eyes or nose, on which no attribute is
    learnt. Read here as fractions of the nose-centred frame ``2 x_n`` by ``2 y_n`` (``eps = 0.5``
    is the nose's relative place in it): ``x in 2 x_n [small, grand]``, ``y in 2 y_n [small - 0.2,
    grand - 0.2]``, a window 0.4 of the frame wide centred on the nose, reaching from 0.4 of the
    frame above the nose down to the nose. On CelebA's mean aligned face it spans x 53-123, y
    27-134: eyes, brows, forehead and hair in; mouth and beard out, as the seed observes ("the
    cropping hides the beards").
    """
    nose = np.asarray(nose, dtype=np.float64)
    if nose.ndim != 2 or nose.shape[1] != 2:
        raise ValueError(f"nose must have shape (N, 2), got {nose.shape}")
    grand, small = eps + 0.2, eps - 0.2
    x, y = 2.0 * nose[:, 0], 2.0 * nose[:, 1]
    return np.stack([x * small, y * (small - 0.2), x * grand, y * (grand - 0.2)], axis=1)


def seed000_type_b_bounds(boxes_xywh: np.ndarray, beta: float = 0.9) -> np.ndarray:
    """Seed 000's "type B" (larger vision) slice bounds ``(N, 4)`` from detector boxes.

    Literally ``x in [x_c - beta w, x_c + beta w]``, ``y in [y_c - beta h, y_c + beta h + h // 16]``
    about the box centre. Odd: the seed also sets ``alpha = 0.7`` but no formula uses it (both axes
    use ``beta``), so it is not a parameter here; ``h // 16`` floors as Python does.
    """
    boxes = _boxes_xywh(boxes_xywh)
    width, height = boxes[:, 2], boxes[:, 3]
    xc, yc = boxes[:, 0] + width / 2.0, boxes[:, 1] + height / 2.0
    shift = np.floor_divide(height, 16)
    return np.stack(
        [xc - beta * width, yc - beta * height, xc + beta * width, yc + beta * height + shift],
        axis=1,
    )


def seed000_type_b_matrix(
    boxes_xywh: np.ndarray, out_size: Size = 36, beta: float = 0.9
) -> np.ndarray:
    """Matrices resizing seed 000's type B crop (``seed000_type_b_bounds``) to ``out_size``."""
    return stretch_matrix(seed000_type_b_bounds(boxes_xywh, beta), out_size)

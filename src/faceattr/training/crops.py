"""Which part of an image a model sees: source -> crop matrices for each crop kind of the seeds.

Pure numpy functions over a batch of ``N`` images. Annotations are in source pixels, NaN where
unknown: landmarks ``(N, 5, 2)``, boxes ``(N, 4)`` as (x, y, width, height), image sizes ``(N, 2)``
as (width, height). Training works on loose crops (the packed cache, or the same crops rendered on
the fly), so :func:`loose_to_crop_matrices` re-expresses a crop in loose-crop pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceattr.geometry import (
    MEAN_ALIGNED_LANDMARKS,
    affact_alignment_matrix,
    aligned_frame_matrices,
    box_matrix,
    compose,
    invert,
    landmarks_in_boxes,
    seed000_type_a_matrix,
    seed000_type_b_matrix,
    transform_points,
)
from faceattr.geometry.affine import Size
from faceattr.geometry.alignment import stretch_matrix

CROP_KINDS = ("affact", "box", "image", "seed000-a", "seed000-b")

BOX_TO_AFFACT = 2.0
"""A detector box x2 is about the AFFACT box (seed 003, section 2.2.2): the fallback of
``affact`` crops for images without landmarks."""


def known_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: rows whose five points are all finite."""
    return np.isfinite(landmarks).all(axis=(1, 2))


def known_boxes(boxes: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: rows with a finite box of positive width and height."""
    return np.isfinite(boxes).all(axis=1) & (np.nan_to_num(boxes[:, 2:]) > 0).all(axis=1)


def fill_canonical_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """A copy of ``landmarks`` with :data:`MEAN_ALIGNED_LANDMARKS` in rows without landmarks (for
    CelebA's aligned images, which all put the face at about the same place)."""
    filled = np.array(landmarks, dtype=np.float64, copy=True)
    filled[~known_landmarks(filled)] = MEAN_ALIGNED_LANDMARKS
    return filled


def missing_for_crop(kind: str, landmarks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: rows that lack what crop ``kind`` needs."""
    if kind not in CROP_KINDS:
        raise ValueError(f"unknown crop kind {kind!r}; known: {', '.join(CROP_KINDS)}")
    if kind in ("box", "seed000-b"):
        return ~known_boxes(boxes)
    if kind == "seed000-a":
        return ~known_landmarks(landmarks)
    if kind == "affact":
        return ~known_landmarks(landmarks) & ~known_boxes(boxes)
    return np.zeros(len(landmarks), dtype=bool)


def check_crop_inputs(
    kind: str, landmarks: np.ndarray, boxes: np.ndarray, image_ids: Sequence[str] | np.ndarray
) -> None:
    """Raise ``ValueError`` naming images that lack what crop ``kind`` needs."""
    missing = np.flatnonzero(missing_for_crop(kind, landmarks, boxes))
    if missing.size:
        need = {"box": "a box", "seed000-b": "a box", "seed000-a": "five landmarks"}
        what = need.get(kind, "landmarks or a box")
        examples = ", ".join(str(image_ids[i]) for i in missing[:3])
        raise ValueError(
            f"crop {kind!r} needs {what} for every image; {missing.size} of {len(image_ids)} "
            f"have none (e.g. {examples}). Run `faceattr data landmarks`, or for aligned images "
            "set data.canonical_landmarks=true"
        )


def crop_matrices(
    kind: str,
    landmarks: np.ndarray,
    boxes: np.ndarray,
    image_sizes: np.ndarray,
    out_size: Size,
    box_scale: float = BOX_TO_AFFACT,
) -> np.ndarray:
    """``(N, 2, 3)`` source -> crop matrices of crop ``kind`` at ``out_size``.

    affact: the AFFACT box of the landmarks (seed 003), or the box x :data:`BOX_TO_AFFACT` where
    landmarks are unknown; box: the box x ``box_scale``; image: the whole image stretched onto the
    crop (seeds 001, 002, 004 resize the aligned image); seed000-a / seed000-b: seed 000's crops of
    the nose and of the box. Rows missing what ``kind`` needs raise ``ValueError``.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    missing = missing_for_crop(kind, landmarks, boxes)
    if missing.any():
        raise ValueError(f"crop {kind!r}: rows {np.flatnonzero(missing)[:10].tolist()} lack input")
    if kind == "box":
        return box_matrix(boxes, out_size, scale=box_scale)
    if kind == "seed000-a":
        return seed000_type_a_matrix(landmarks, out_size)
    if kind == "seed000-b":
        return seed000_type_b_matrix(boxes, out_size)
    if kind == "image":
        sizes = np.asarray(image_sizes, dtype=np.float64)
        bounds = np.concatenate([np.zeros_like(sizes), sizes], axis=1)
        return stretch_matrix(bounds, out_size)
    matrices = np.empty((len(landmarks), 2, 3))
    by_landmarks = known_landmarks(landmarks)
    if by_landmarks.any():
        matrices[by_landmarks] = affact_alignment_matrix(landmarks[by_landmarks], out_size)
    if (~by_landmarks).any():
        matrices[~by_landmarks] = box_matrix(boxes[~by_landmarks], out_size, scale=BOX_TO_AFFACT)
    return matrices


def detected_crop_matrices(
    kind: str, boxes: np.ndarray, out_size: Size, box_scale: float = BOX_TO_AFFACT
) -> np.ndarray:
    """``(N, 2, 3)`` source -> crop matrices of crop ``kind`` from detector boxes ``(N, 4)`` alone.

    affact: the box x :data:`BOX_TO_AFFACT` (seed 003's test set D); box: the box x
    ``box_scale``; seed000-b: seed 000's type B crop of the box; seed000-a and image: the crop of
    the landmarks a detector puts in such a box (``landmarks_in_boxes``), the image kind as the
    whole aligned frame (what the aligned set would show of that face).
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    if kind == "affact":
        return box_matrix(boxes, out_size, scale=BOX_TO_AFFACT)
    if kind == "image":
        return aligned_frame_matrices(landmarks_in_boxes(boxes), out_size)
    if kind == "seed000-a":
        return seed000_type_a_matrix(landmarks_in_boxes(boxes), out_size)
    sizes = np.full((len(boxes), 2), np.nan)
    return crop_matrices(
        kind, np.full((len(boxes), 5, 2), np.nan), boxes, sizes, out_size, box_scale
    )


def loose_to_crop_matrices(source_to_crop: np.ndarray, source_to_loose: np.ndarray) -> np.ndarray:
    """``(N, 2, 3)`` matrices taking loose-crop pixels to crop pixels."""
    return compose(np.asarray(source_to_crop), invert(np.asarray(source_to_loose)))


def to_source(source_to_loose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points ``(N, K, 2)`` in loose-crop pixels mapped back to source pixels (NaN stays NaN)."""
    return transform_points(invert(np.asarray(source_to_loose)), np.asarray(points, np.float64))


def corners_to_boxes(corners: np.ndarray) -> np.ndarray:
    """``(N, 4)`` axis-aligned (x, y, width, height) boxes around ``(N, 4, 2)`` corners."""
    low, high = corners.min(axis=1), corners.max(axis=1)
    return np.concatenate([low, high - low], axis=1)

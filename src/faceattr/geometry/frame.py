"""CelebA's aligned face frame: where the aligned set puts every face, and the matrices that take
any face (from its landmarks, or from a detector box alone) into that frame.

The frame is the 178x218 image of ``img_align_celeba``; a face found elsewhere (a photo, a
detector box) is mapped there by the similarity that takes its AFFACT box onto the AFFACT box of
:data:`MEAN_ALIGNED_LANDMARKS`. Crops defined in the aligned images' pixels (seed 000's type A,
the "whole aligned image" of seeds 001, 002 and 004) are then cut from any face the same way.
"""

from __future__ import annotations

import numpy as np

from faceattr.geometry.affine import Size, compose, invert, transform_points
from faceattr.geometry.alignment import (
    SEED000_EPSILON,
    affact_alignment_matrix,
    seed000_type_a_bounds,
    stretch_matrix,
)

ALIGNED_IMAGE_SIZE = (178, 218)
"""Width and height of every image of CelebA's aligned set (``img_align_celeba``)."""
MEAN_ALIGNED_LANDMARKS = np.array(
    [[69.0, 111.0], [108.0, 111.0], [88.0, 134.0], [72.0, 152.0], [106.0, 152.0]]
)
"""CelebA's mean aligned landmarks (``list_landmarks_align_celeba.txt``), lefteye, righteye, nose,
leftmouth, rightmouth: where the aligned set puts every face, within a few pixels."""
MEAN_ALIGNED_BOX = np.array([46.0, 69.0, 87.0, 115.0])
"""YuNet's mean box (x, y, width, height) on 2,000 aligned CelebA images."""
BOX_LANDMARK_LAYOUT = np.array(
    [[0.266, 0.376], [0.721, 0.378], [0.486, 0.573], [0.301, 0.723], [0.685, 0.728]]
)
"""YuNet's mean landmarks as fractions of its box (2,000 aligned CelebA images): where a face's
five points lie in a detector box when only the box is known."""
_ALIGNMENT_SIDE = 256
"""Side of the intermediate AFFACT box frame of :func:`frame_matrices` (any size works)."""


def landmarks_in_boxes(boxes: np.ndarray) -> np.ndarray:
    """``(N, 5, 2)`` landmarks placed in ``(N, 4)`` (x, y, width, height) boxes by
    :data:`BOX_LANDMARK_LAYOUT`."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return boxes[:, None, :2] + BOX_LANDMARK_LAYOUT * boxes[:, None, 2:]


def scale_to_image(values: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Points ``(..., 2)`` or boxes ``(..., 4)`` given in the 178x218 aligned frame, scaled to an
    aligned image of ``image_size`` (width, height)."""
    width, height = image_size
    factor = np.array([width / ALIGNED_IMAGE_SIZE[0], height / ALIGNED_IMAGE_SIZE[1]])
    return np.asarray(values, dtype=np.float64) * np.tile(factor, np.shape(values)[-1] // 2)


def frame_matrices(landmarks: np.ndarray) -> np.ndarray:
    """``(N, 2, 3)`` source -> aligned-frame matrices: the similarity taking the AFFACT box of each
    face's ``(N, 5, 2)`` landmarks onto that of :data:`MEAN_ALIGNED_LANDMARKS`. On an aligned
    CelebA image it is about the identity."""
    to_box = affact_alignment_matrix(landmarks, _ALIGNMENT_SIDE)
    reference = np.broadcast_to(MEAN_ALIGNED_LANDMARKS, (len(to_box), 5, 2))
    return compose(invert(affact_alignment_matrix(reference, _ALIGNMENT_SIDE)), to_box)


def aligned_frame_matrices(landmarks: np.ndarray, out_size: Size) -> np.ndarray:
    """``(N, 2, 3)`` source -> crop matrices showing each face as CelebA's aligned set shows it:
    :func:`frame_matrices`, then the whole 178x218 frame stretched onto ``out_size``."""
    width, height = ALIGNED_IMAGE_SIZE
    frame = stretch_matrix(np.tile([0.0, 0.0, width, height], (len(landmarks), 1)), out_size)
    return compose(frame, frame_matrices(landmarks))


def seed000_type_a_matrix(
    landmarks: np.ndarray, out_size: Size = 36, eps: float = SEED000_EPSILON
) -> np.ndarray:
    """``(N, 2, 3)`` matrices cutting seed 000's type A crop (``seed000_type_a_bounds`` of the nose
    in the aligned frame) out of faces with ``(N, 5, 2)`` landmarks, stretched onto ``out_size``."""
    to_frame = frame_matrices(landmarks)
    nose = transform_points(to_frame, np.asarray(landmarks, dtype=np.float64)[:, 2:3])[:, 0]
    return compose(stretch_matrix(seed000_type_a_bounds(nose, eps), out_size), to_frame)

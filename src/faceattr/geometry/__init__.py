"""Face geometry on whole batches: landmarks -> box -> one affine warp, jitter, seed crops."""

from faceattr.geometry.affine import Size, compose, invert, transform_points
from faceattr.geometry.alignment import (
    LANDMARK_NAMES,
    MIRROR_ORDER,
    FaceBox,
    affact_alignment_matrix,
    affact_box,
    box_matrix,
    face_box_matrix,
    seed000_type_b_matrix,
)
from faceattr.geometry.augment import AffactAugment, AugmentedBatch
from faceattr.geometry.frame import (
    ALIGNED_IMAGE_SIZE,
    MEAN_ALIGNED_LANDMARKS,
    aligned_frame_matrices,
    frame_matrices,
    landmarks_in_boxes,
    seed000_type_a_matrix,
)
from faceattr.geometry.jitter import AffactJitter, JitterParams, jitter_matrix, sample_jitter
from faceattr.geometry.offline import mean_blur_2x2, seed000_augment, seed000_crops
from faceattr.geometry.warp import warp_affine

__all__ = [
    "ALIGNED_IMAGE_SIZE",
    "MEAN_ALIGNED_LANDMARKS",
    "aligned_frame_matrices",
    "frame_matrices",
    "landmarks_in_boxes",
    "AffactAugment",
    "AffactJitter",
    "AugmentedBatch",
    "JitterParams",
    "jitter_matrix",
    "mean_blur_2x2",
    "seed000_augment",
    "seed000_crops",
    "sample_jitter",
    "LANDMARK_NAMES",
    "MIRROR_ORDER",
    "FaceBox",
    "Size",
    "affact_alignment_matrix",
    "affact_box",
    "box_matrix",
    "compose",
    "face_box_matrix",
    "invert",
    "seed000_type_a_matrix",
    "seed000_type_b_matrix",
    "transform_points",
    "warp_affine",
]

"""CelebA's aligned frame: faces anywhere map onto the aligned set's mean face."""

from __future__ import annotations

import numpy as np

from faceattr.geometry import (
    ALIGNED_IMAGE_SIZE,
    MEAN_ALIGNED_LANDMARKS,
    aligned_frame_matrices,
    frame_matrices,
    landmarks_in_boxes,
    transform_points,
)
from faceattr.geometry.alignment import stretch_matrix
from faceattr.geometry.frame import MEAN_ALIGNED_BOX, scale_to_image


def test_the_aligned_frame_of_the_mean_face_is_the_whole_aligned_image() -> None:
    matrices = aligned_frame_matrices(MEAN_ALIGNED_LANDMARKS[None], (64, 48))
    width, height = ALIGNED_IMAGE_SIZE
    whole = stretch_matrix(np.array([[0.0, 0.0, width, height]]), (64, 48))
    np.testing.assert_allclose(matrices, whole, atol=1e-9)
    twice = aligned_frame_matrices(MEAN_ALIGNED_LANDMARKS[None] * 2, (64, 48))
    np.testing.assert_allclose(twice[0, :, :2], whole[0, :, :2] / 2, atol=1e-9)


def test_a_moved_face_lands_on_the_mean_face() -> None:
    angle = np.deg2rad(-30.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    photo = MEAN_ALIGNED_LANDMARKS @ rotation.T * 0.5 + [20.0, 300.0]
    mapped = transform_points(frame_matrices(photo[None]), photo[None])[0]
    np.testing.assert_allclose(mapped, MEAN_ALIGNED_LANDMARKS, atol=1e-6)


def test_the_mean_box_holds_about_the_mean_landmarks() -> None:
    placed = landmarks_in_boxes(MEAN_ALIGNED_BOX[None])[0]
    assert np.abs(placed - MEAN_ALIGNED_LANDMARKS).max() < 4.0
    half = scale_to_image(MEAN_ALIGNED_BOX, (89, 109))
    np.testing.assert_allclose(half, MEAN_ALIGNED_BOX / 2)

"""The batched warp against OpenCV's per-image warp, and landmarks against a drawn dot."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from faceattr.geometry import affact_alignment_matrix, transform_points, warp_affine
from faceattr.geometry.warp import grid_theta


def random_matrices(n: int, rng: np.random.Generator, out_hw: tuple[int, int]) -> np.ndarray:
    """Rotations, scales and shifts that put part of each crop outside a 40x50 source."""
    angle = rng.uniform(-np.pi, np.pi, n)
    scale = rng.uniform(0.6, 1.8, n)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    centre_in = rng.uniform([0, 0], [50, 40], (n, 2))
    centre_out = np.array([(out_hw[1] - 1) / 2, (out_hw[0] - 1) / 2])
    linear = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], axis=1)
    translation = centre_out - np.einsum("nij,nj->ni", linear, centre_in)
    return np.concatenate([linear, translation[:, :, None]], axis=2)


def opencv_warp(image: np.ndarray, matrix: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """The per-image reference: (H, W, C) uint8 through cv2.warpAffine with border replication."""
    return cv2.warpAffine(
        image,
        matrix,
        (out_hw[1], out_hw[0]),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def test_batch_equals_opencv_per_image() -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (240, 50, 3), dtype=np.uint8)
    images = np.asarray(cv2.GaussianBlur(noise, (5, 5), 1.0)).reshape(6, 40, 50, 3)
    out_hw = (33, 47)
    matrices = random_matrices(6, rng, out_hw)
    batch = torch.from_numpy(images).permute(0, 3, 1, 2)
    ours = warp_affine(batch, matrices, out_hw, dtype=torch.float64).permute(0, 2, 3, 1) * 255
    reference = np.stack([opencv_warp(images[i], matrices[i], out_hw) for i in range(6)])
    difference = np.abs(ours.numpy() - reference)
    # OpenCV rounds to uint8 and (OpenCV 4) places samples at 1/32 px; we keep full precision.
    assert difference.max() <= 2.0
    assert difference.mean() < 0.3


def test_uint8_output_and_identity() -> None:
    rng = np.random.default_rng(1)
    images = torch.from_numpy(rng.integers(0, 256, (3, 3, 20, 30), dtype=np.uint8))
    identity = np.tile(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), (3, 1, 1))
    assert torch.equal(warp_affine(images, identity, (20, 30), dtype=torch.uint8), images)
    as_float = warp_affine(images.float() / 255, identity, (20, 30))
    assert as_float.dtype == torch.float32
    assert torch.allclose(as_float * 255, images.float(), atol=0.01)  # float32 grid


def test_theta_matches_the_pixel_convention() -> None:
    # A shift by one pixel moves the normalised grid by 2 / size.
    shift = np.array([[[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]])
    theta = grid_theta(shift, (10, 20), (10, 20))
    expected = torch.tensor([[[1.0, 0.0, -2.0 / 20], [0.0, 1.0, 0.0]]], dtype=torch.float64)
    assert torch.allclose(theta, expected)


def test_landmarks_follow_a_drawn_dot() -> None:
    rng = np.random.default_rng(2)
    n, h, w = 5, 218, 178
    landmarks = np.array(
        [[69.0, 111.0], [108.0, 111.0], [89.0, 135.0], [72.0, 152.0], [105.0, 152]]
    )
    landmarks = landmarks + rng.normal(0, 3, (n, 5, 2))
    images = np.zeros((n, 1, h, w), dtype=np.float32)
    ys, xs = np.mgrid[0:h, 0:w]
    for i in range(n):
        x, y = landmarks[i, 2]  # the nose, at a sub-pixel position
        images[i, 0] = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5**2))
    matrices = affact_alignment_matrix(landmarks, 160)
    out = warp_affine(torch.from_numpy(images), matrices, 160)[:, 0].numpy()
    expected = transform_points(matrices, landmarks[:, 2:3])[:, 0]
    for i in range(n):
        row, col = np.unravel_index(out[i].argmax(), out[i].shape)
        assert abs(col - expected[i, 0]) <= 1.0 and abs(row - expected[i, 1]) <= 1.0


def test_mismatched_batch_is_an_error() -> None:
    images = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match="1 matrices for 2 images"):
        warp_affine(images, np.zeros((1, 2, 3)), 4)

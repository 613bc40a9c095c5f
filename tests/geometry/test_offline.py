"""Seed 000's 36x36 grayscale crops and x4 offline augmentation, value by value."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from faceattr.geometry import (
    MEAN_ALIGNED_LANDMARKS,
    mean_blur_2x2,
    seed000_augment,
    seed000_crops,
    seed000_type_a_matrix,
    seed000_type_b_matrix,
)


def test_augment_is_four_blocks_with_exact_values() -> None:
    crops = torch.tensor([[[0, 10, 20], [30, 41, 50], [255, 255, 1]]], dtype=torch.uint8)
    out = seed000_augment(crops)
    assert out.shape == (4, 3, 3) and out.dtype == torch.uint8
    assert torch.equal(out[0], crops[0])
    flipped = torch.tensor([[20, 10, 0], [50, 41, 30], [1, 255, 255]], dtype=torch.uint8)
    assert torch.equal(out[1], flipped)
    # Each pixel: mean of itself, the pixel above, to the left, and above-left (row/column -1
    # reflect to 1), rounded half up: (41 + 10 + 30 + 0) / 4 = 20.25 -> 20 at (1, 1) and
    # (41 + 50 + 255 + 1) / 4 = 86.75 -> 87 at (2, 2).
    blurred = torch.tensor([[20, 20, 30], [20, 20, 30], [145, 145, 87]], dtype=torch.uint8)
    assert torch.equal(out[2], blurred)
    assert torch.equal(out[3], blurred.flip(-1))


def test_mean_blur_is_opencv_blur_within_rounding() -> None:
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (5, 36, 36), dtype=np.uint8)
    ours = mean_blur_2x2(torch.from_numpy(crops)).numpy().astype(int)
    reference = np.stack([cv2.blur(c, (2, 2)) for c in crops]).astype(int)
    assert np.abs(ours - reference).max() <= 1  # OpenCV 5 rounds 0.25 up; we round half up


def test_crops_are_36x36_gray_of_the_right_region() -> None:
    # Left half dark red, right half bright green: the type B crop of a box over the right
    # half sees green only; gray is BT.601 luma.
    image = np.zeros((1, 3, 200, 200), dtype=np.uint8)
    image[0, 0, :, :100] = 200
    image[0, 1, :, 100:] = 250
    boxes = np.array([[130.0, 60.0, 40.0, 40.0]])
    crops = seed000_crops(torch.from_numpy(image), seed000_type_b_matrix(boxes))
    assert crops.shape == (1, 36, 36) and crops.dtype == torch.uint8
    assert torch.all(crops == round(0.587 * 250))
    face = MEAN_ALIGNED_LANDMARKS[None] + [12.0, 0.0]  # type A spans x 65..135: both halves
    left_and_right = seed000_crops(torch.from_numpy(image), seed000_type_a_matrix(face))
    assert int(left_and_right[0, 18, 0]) == round(0.299 * 200)
    assert int(left_and_right[0, 18, 35]) == round(0.587 * 250)


def test_bad_crops_are_a_clear_error() -> None:
    with pytest.raises(ValueError, match="uint8"):
        mean_blur_2x2(torch.zeros(2, 36, 36))
    with pytest.raises(ValueError, match="3 or 1"):
        seed000_crops(torch.zeros(1, 4, 8, 8, dtype=torch.uint8), np.zeros((1, 2, 3)))

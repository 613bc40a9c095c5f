"""Per-image blur, gamma and colour temperature against reference formulas and OpenCV."""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from faceattr.geometry.photometric import (
    KELVIN_RGB,
    adjust_gamma,
    apply_channel_gains,
    gaussian_blur,
    kelvin_gains,
)


def test_blur_equals_opencv_per_image() -> None:
    rng = np.random.default_rng(0)
    images = rng.random((4, 3, 30, 70))
    sigmas = [0.0, 0.8, 2.5, 6.0]
    ours = gaussian_blur(torch.from_numpy(images), torch.tensor(sigmas)).numpy()
    for i, sigma in enumerate(sigmas):
        radius = int(3 * sigma)
        hwc = images[i].transpose(1, 2, 0)
        if radius == 0:
            expected = hwc
        else:
            size = (2 * radius + 1, 2 * radius + 1)
            expected = cv2.GaussianBlur(hwc, size, sigma, borderType=cv2.BORDER_REPLICATE)
        np.testing.assert_allclose(ours[i].transpose(1, 2, 0), expected, atol=1e-9)


def test_blur_impulse_is_the_truncated_gaussian() -> None:
    image = torch.zeros(1, 1, 41, 41, dtype=torch.float64)
    image[0, 0, 20, 20] = 1.0
    sigma = 2.0
    response = gaussian_blur(image, torch.tensor([sigma]), gain=0.5)[0, 0, 20].numpy()
    taps = np.arange(-6, 7)
    kernel = np.exp(-(taps**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    np.testing.assert_allclose(response[14:27], 0.5 * kernel[6] * kernel, atol=1e-12)
    assert np.all(response[:14] == 0) and np.all(response[27:] == 0)


def test_blur_keeps_a_constant_image_constant() -> None:
    image = torch.full((2, 3, 12, 9), 0.25)
    blurred = gaussian_blur(image, torch.tensor([1.0, 5.0]))
    assert torch.allclose(blurred, image, atol=1e-6)


def test_gamma_is_a_power_per_image() -> None:
    images = torch.rand(3, 3, 5, 5, dtype=torch.float64)
    images[0, 0, 0, 0] = 0.0
    gamma = torch.tensor([0.5, 1.0, 2.7], dtype=torch.float64)
    expected = torch.stack([images[i] ** gamma[i] for i in range(3)])
    assert torch.allclose(adjust_gamma(images, gamma), expected, atol=1e-12)


def test_kelvin_gains_follow_the_table() -> None:
    kelvin = torch.tensor([6500.0, 6250.0, 500.0, 20000.0])
    gains = kelvin_gains(kelvin)
    assert torch.allclose(gains[0], torch.tensor(KELVIN_RGB[6500], dtype=torch.float64) / 255)
    middle = (np.array(KELVIN_RGB[6000]) + np.array(KELVIN_RGB[6500])) / 2 / 255
    assert np.allclose(gains[1].numpy(), middle)
    assert torch.equal(gains[2], gains[2].new_tensor(KELVIN_RGB[1000]) / 255)  # clamped
    assert torch.equal(gains[3], gains[3].new_tensor(KELVIN_RGB[10000]) / 255)
    warm = apply_channel_gains(torch.ones(1, 3, 2, 2), gains[2:3])
    assert math.isclose(float(warm[0, 2].max()), 0.0) and math.isclose(float(warm[0, 0].min()), 1.0)

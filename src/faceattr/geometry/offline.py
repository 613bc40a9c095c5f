"""Seed 000's data: 36x36 grayscale crops and their offline x4 augmentation (flip, blur)."""

from __future__ import annotations

import numpy as np
import torch

from faceattr.geometry.affine import Size
from faceattr.geometry.warp import warp_affine

LUMA = (0.299, 0.587, 0.114)
"""ITU-R BT.601 weights of R, G, B in the grayscale value (as OpenCV's and PIL's conversions)."""


def seed000_crops(
    images: torch.Tensor, matrices: np.ndarray | torch.Tensor, out_size: Size = 36
) -> torch.Tensor:
    """``(N, h, w)`` uint8 grayscale crops of ``(N, 3, H, W)`` RGB or ``(N, 1, H, W)`` images.

    ``matrices`` are seed 000's crop matrices (``seed000_type_a_matrix`` or
    ``seed000_type_b_matrix``); one bilinear resampling with border replication, then BT.601 luma.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (N, 3 or 1, H, W), got {tuple(images.shape)}")
    warped = warp_affine(images, matrices, out_size)
    if warped.shape[1] == 3:
        weights = torch.tensor(LUMA, dtype=warped.dtype, device=warped.device)
        warped = torch.einsum("nchw,c->nhw", warped, weights)[:, None]
    return (warped[:, 0] * 255.0).round_().clamp_(0, 255).to(torch.uint8)


def mean_blur_2x2(crops: torch.Tensor) -> torch.Tensor:
    """The 2x2 average filter of ``(N, h, w)`` uint8 crops, rounded half up.

    Each pixel becomes the mean of itself and its upper, left and upper-left neighbours (the
    anchor of OpenCV's ``blur(img, (2, 2))``); the first row and column reflect (row -1 is row 1).
    """
    if crops.ndim != 3 or crops.dtype != torch.uint8:
        raise ValueError(f"crops must be (N, h, w) uint8, got {tuple(crops.shape)} {crops.dtype}")
    values = crops.to(torch.int32)
    padded = torch.cat([values[:, 1:2], values], dim=1)
    padded = torch.cat([padded[:, :, 1:2], padded], dim=2)
    total = padded[:, :-1, :-1] + padded[:, 1:, :-1] + padded[:, :-1, 1:] + padded[:, 1:, 1:]
    return torch.div(total + 2, 4, rounding_mode="floor").to(torch.uint8)


def seed000_augment(crops: torch.Tensor) -> torch.Tensor:
    """Seed 000's x4 offline augmentation of ``(N, h, w)`` uint8 crops, as ``(4N, h, w)``.

    Four blocks of ``N`` in the order original, horizontal flip, 2x2 mean blur, flipped blur,
    so the labels of the result are ``labels.repeat(4, 1)``.
    """
    blurred = mean_blur_2x2(crops)
    return torch.cat([crops, crops.flip(-1), blurred, blurred.flip(-1)])

"""The OpenCV pixel kernel of CPU batches against the torch path, OpenCV's own warp and itself."""

from __future__ import annotations

import gc
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from faceattr.geometry import AffactAugment, AffactJitter, affact_alignment_matrix, warp_affine
from faceattr.geometry.opencv_pixels import (
    EXACT_WARP,
    POOLED_BYTES,
    Photometric,
    empty_pixels,
    opencv_pixels,
    source_windows,
)
from faceattr.geometry.warp import grid_sample_warp

WARP_GREY_LEVELS = 1e-3 if EXACT_WARP else 2.0
"""How far a plain warp of ``smooth_images`` may be from ``grid_sample``: OpenCV 5 samples at
exact positions, OpenCV 4 at 1/32 pixel."""

# CelebA's mean aligned landmarks (x, y) in a 178x218 image.
ALIGNED = np.array([[69.4, 111.2], [107.6, 111.1], [88.1, 135.2], [71.3, 152.1], [106.0, 152.2]])


def smooth_images(n: int, channels: int, hw: tuple[int, int], seed: int) -> np.ndarray:
    """``(n, H, W, C)`` uint8 noise blurred a little, with some pure black (gamma's steep end)."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (n * hw[0], hw[1], channels), dtype=np.uint8)
    images = np.asarray(cv2.GaussianBlur(noise, (5, 5), 1.2)).reshape(n, *hw, channels)
    images[:, : hw[0] // 5] = 0
    return images


def far_matrices(n: int, rng: np.random.Generator, out_hw: tuple[int, int]) -> np.ndarray:
    """Rotations, zooms in and out, and shifts: crops partly, mostly or wholly off a 40x50 image."""
    angle = rng.uniform(-np.pi, np.pi, n)
    scale = rng.choice([0.15, 0.7, 1.0, 2.5], n)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    centre_in = rng.uniform([-60, -60], [110, 100], (n, 2))
    centre_out = np.array([(out_hw[1] - 1) / 2, (out_hw[0] - 1) / 2])
    linear = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], axis=1)
    translation = centre_out - np.einsum("nij,nj->ni", linear, centre_in)
    return np.concatenate([linear, translation[:, :, None]], axis=2)


def grey_levels(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Absolute differences of two [0, 1] batches in grey levels."""
    return 255 * (a.double() - b.double()).abs()


def assert_like_the_torch_kernel(ours: torch.Tensor, reference: torch.Tensor) -> None:
    """Within a quarter of a grey level everywhere with OpenCV 5; with OpenCV 4 (samples at
    1/32 pixel, which a strong gamma magnifies at near-black pixels) within two grey levels at
    99.9% of pixels and a tenth on average."""
    difference = grey_levels(ours, reference).flatten().numpy()
    assert np.percentile(difference, 99.9) < 2.0 and difference.mean() < 0.1
    if EXACT_WARP:
        assert difference.max() < 0.25 and difference.mean() < 1e-3


@pytest.mark.parametrize("temperature", [False, True])
def test_augment_equals_the_torch_kernel_on_the_same_draws(temperature: bool) -> None:
    images = torch.from_numpy(smooth_images(16, 3, (218, 178), seed=0)).permute(0, 3, 1, 2)
    landmarks = ALIGNED + np.random.default_rng(1).normal(0, 2.0, (16, 5, 2))
    matrices = affact_alignment_matrix(landmarks, 96)
    jitter = AffactJitter(temperature_enabled=temperature)
    fast = AffactAugment(jitter, 96)(images, matrices, landmarks, torch.Generator().manual_seed(4))
    reference = AffactAugment(jitter, 96, cpu_kernel="torch")(
        images, matrices, landmarks, torch.Generator().manual_seed(4)
    )
    assert torch.equal(fast.matrices, reference.matrices)
    assert fast.landmarks is not None and reference.landmarks is not None
    assert torch.equal(fast.landmarks, reference.landmarks)
    assert fast.images.shape == reference.images.shape == (16, 3, 96, 96)
    assert (fast.params.gamma < 0.5).any() and (fast.params.blur_sigma > 1).any()  # hard cases
    assert_like_the_torch_kernel(fast.images, reference.images)


def test_real_faces_equal_the_torch_kernel(celeba_root: Path) -> None:
    files = sorted((celeba_root / "img_align_celeba").glob("*.jpg"))[:8]
    faces = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    images = torch.from_numpy(faces).permute(0, 3, 1, 2)  # the packed cache's memory layout
    matrices = affact_alignment_matrix(np.repeat(ALIGNED[None], len(files), axis=0), 224)
    draws = [torch.Generator().manual_seed(2) for _ in range(2)]
    fast = AffactAugment(AffactJitter(), 224)(images, matrices, generator=draws[0])
    reference = AffactAugment(AffactJitter(), 224, cpu_kernel="torch")(
        images, matrices, generator=draws[1]
    )
    assert_like_the_torch_kernel(fast.images, reference.images)


def test_reading_only_the_crop_equals_warping_the_whole_image() -> None:
    rng = np.random.default_rng(5)
    images = smooth_images(24, 3, (40, 50), seed=5)
    out_hw = (33, 47)
    matrices = far_matrices(24, rng, out_hw)
    crop = source_windows(matrices, (40, 50), out_hw).crop
    rows, columns = crop[:, 1] - crop[:, 0], crop[:, 3] - crop[:, 2]
    assert ((rows < 40) & (columns < 50)).any()  # a zoom into part of the image
    assert ((rows == 1) | (columns == 1)).any()  # a crop wholly off the image: its nearest edge
    ours = opencv_pixels(torch.from_numpy(images).permute(0, 3, 1, 2), matrices, out_hw)
    for i in range(24):
        expected = cv2.warpAffine(
            images[i].astype(np.float32) / 255,
            matrices[i],
            (out_hw[1], out_hw[0]),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        np.testing.assert_allclose(ours[i].permute(1, 2, 0).numpy(), expected, atol=2e-5)


def test_warp_equals_grid_sample_for_every_layout_and_type() -> None:
    rng = np.random.default_rng(6)
    matrices = far_matrices(6, rng, (30, 20))
    for channels in (1, 3, 4):
        pixels = torch.from_numpy(smooth_images(6, channels, (40, 50), seed=channels))
        for images in (pixels.permute(0, 3, 1, 2), pixels.permute(0, 3, 1, 2).contiguous()):
            for source in (images, images.double() / 255):
                ours = warp_affine(source, matrices, (30, 20))
                reference = grid_sample_warp(source, matrices, (30, 20))
                assert ours.shape == (6, channels, 30, 20) and ours.dtype == torch.float32
                assert ours.is_contiguous(memory_format=torch.channels_last)
                assert grey_levels(ours, reference).max() < WARP_GREY_LEVELS
    as_uint8 = warp_affine(pixels.permute(0, 3, 1, 2), matrices, (30, 20), dtype=torch.uint8)
    reference_uint8 = grid_sample_warp(
        pixels.permute(0, 3, 1, 2), matrices, (30, 20), dtype=torch.uint8
    )
    assert (as_uint8.int() - reference_uint8.int()).abs().max() <= 1


def test_threads_and_layouts_give_identical_pixels() -> None:
    rng = np.random.default_rng(7)
    images = torch.from_numpy(smooth_images(9, 3, (40, 50), seed=7)).permute(0, 3, 1, 2)
    matrices = far_matrices(9, rng, (32, 32))
    effects = Photometric(
        blur_sigma=rng.uniform(0, 4, 9),
        gamma=2 ** rng.normal(0, 1, 9),
        channel_gain=rng.random((9, 3)),
    )
    one = opencv_pixels(images, matrices, 32, effects, threads=1)
    three = opencv_pixels(images.contiguous(), matrices, 32, effects, threads=3)
    assert torch.equal(one, three)


def test_opencv_threads_come_back_after_a_call() -> None:
    before = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        opencv_pixels(
            torch.zeros(4, 3, 10, 10, dtype=torch.uint8), np.tile(np.eye(2, 3), (4, 1, 1)), 8
        )
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(before)


def test_unsupported_images_are_refused() -> None:
    identity = np.tile(np.eye(2, 3), (2, 1, 1))
    with pytest.raises(ValueError, match=r"got \(2, 5, 8, 8\)"):
        opencv_pixels(torch.zeros(2, 5, 8, 8), identity, 4)
    with pytest.raises(ValueError, match="torch.int32"):
        opencv_pixels(torch.zeros(2, 3, 8, 8, dtype=torch.int32), identity, 4)
    with pytest.raises(ValueError, match=r"channel_gain must have shape \(2, 1\)"):
        opencv_pixels(
            torch.zeros(2, 1, 8, 8), identity, 4, Photometric(channel_gain=np.ones((2, 3)))
        )
    with pytest.raises(ValueError, match="2 finite 2x3 matrices"):
        opencv_pixels(torch.zeros(2, 3, 8, 8), identity * np.nan, 4)
    # five channels still warp, through grid_sample
    assert warp_affine(torch.rand(2, 5, 8, 8), identity, 8).shape == (2, 5, 8, 8)


def test_large_outputs_keep_their_memory_until_every_view_is_gone() -> None:
    shape = (POOLED_BYTES // (4 * 3 * 64 * 61) + 1, 3, 64, 61)  # a size no other test uses
    first = empty_pixels(shape)
    first.fill_(0.25)
    view = first[1:].permute(0, 2, 3, 1)
    address = first.data_ptr()
    del first
    gc.collect()
    second = empty_pixels(shape)  # the first's memory is still in use by ``view``
    assert second.data_ptr() != address
    addresses = {address, second.data_ptr()}
    second.fill_(0.5)
    assert float(view.sum()) == pytest.approx(0.25 * view.numel())
    del view, second
    gc.collect()
    reused = empty_pixels(shape)  # a freed block of the same size comes back
    assert reused.data_ptr() in addresses and reused.shape == shape
    reused.fill_(1.0)
    assert float(reused.sum()) == reused.numel()
    assert empty_pixels((2, 3)).shape == (2, 3)

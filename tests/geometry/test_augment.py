"""The composed AFFACT augmentation: reproducible, exact without jitter, landmarks that follow."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from faceattr.geometry import (
    AffactAugment,
    AffactJitter,
    affact_alignment_matrix,
    transform_points,
    warp_affine,
)
from faceattr.geometry.augment import CpuKernel
from faceattr.geometry.warp import grid_sample_warp

KERNELS: list[CpuKernel] = ["opencv", "torch"]

# Eyes level and symmetric about x = 44.5, the centre of a 90-pixel-wide source.
SYMMETRIC = np.array([[34.5, 50.0], [54.5, 50.0], [44.5, 63.0], [36.5, 72.0], [52.5, 72.0]])


def faces(n: int, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """Random uint8 images (n, 3, 110, 90) and jittered landmarks."""
    rng = np.random.default_rng(seed)
    images = torch.from_numpy(rng.integers(0, 256, (n, 3, 110, 90), dtype=np.uint8))
    return images, SYMMETRIC + rng.normal(0, 2.0, (n, 5, 2))


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_seed_reproduces_the_batch_exactly(kernel: CpuKernel) -> None:
    images, landmarks = faces(12)
    matrices = affact_alignment_matrix(landmarks, 64)
    augment = AffactAugment(
        AffactJitter(temperature_enabled=True), 64, cpu_chunk=5, cpu_kernel=kernel
    )
    first = augment(images, matrices, landmarks, torch.Generator().manual_seed(7))
    again = augment(images, matrices, landmarks, torch.Generator().manual_seed(7))
    other = augment(images, matrices, landmarks, torch.Generator().manual_seed(8))
    assert torch.equal(first.images, again.images)
    assert first.landmarks is not None and again.landmarks is not None
    assert torch.equal(first.landmarks, again.landmarks)
    assert not torch.allclose(first.images, other.images)
    assert first.images.shape == (12, 3, 64, 64) and first.images.dtype == torch.float32
    assert first.images.min() >= 0.0 and first.images.max() <= 1.0 + 1e-5


def test_chunks_on_cpu_equal_the_whole_batch() -> None:
    images, landmarks = faces(10, seed=1)
    matrices = affact_alignment_matrix(landmarks, 48)
    chunked = AffactAugment(AffactJitter(), 48, cpu_chunk=3, cpu_kernel="torch")
    whole = AffactAugment(AffactJitter(), 48, cpu_chunk=10, cpu_kernel="torch")
    a = chunked(images, matrices, None, torch.Generator().manual_seed(3))
    b = whole(images, matrices, None, torch.Generator().manual_seed(3))
    assert torch.allclose(a.images, b.images, atol=1e-5)


@pytest.mark.parametrize("kernel", KERNELS)
def test_without_jitter_it_is_the_alignment(kernel: CpuKernel) -> None:
    images, landmarks = faces(4, seed=2)
    matrices = affact_alignment_matrix(landmarks, (72, 56))
    out = AffactAugment(AffactJitter.off(), (72, 56), cpu_kernel=kernel)(
        images, matrices, landmarks
    )
    warp = warp_affine if kernel == "opencv" else grid_sample_warp
    assert torch.equal(out.images, warp(images, matrices, (72, 56)))
    assert out.landmarks is not None
    assert np.allclose(out.landmarks.numpy(), transform_points(matrices, landmarks))


@pytest.mark.parametrize("kernel", KERNELS)
def test_mirror_maps_the_left_eye_onto_the_right_eye(kernel: CpuKernel) -> None:
    images, _ = faces(3, seed=3)
    landmarks = np.repeat(SYMMETRIC[None], 3, axis=0)
    matrices = affact_alignment_matrix(landmarks, 80)
    plain = AffactAugment(AffactJitter.off(), 80, cpu_kernel=kernel)(images, matrices, landmarks)
    always = dataclasses.replace(AffactJitter.off(), mirror_enabled=True, mirror_p=1.0)
    flipped = AffactAugment(always, 80, cpu_kernel=kernel)(images, matrices, landmarks)
    assert plain.landmarks is not None and flipped.landmarks is not None
    left_eye_moved = transform_points(flipped.matrices, torch.from_numpy(landmarks))[:, 0]
    assert torch.allclose(left_eye_moved, plain.landmarks[:, 1])
    # After the swap a symmetric face keeps its landmarks; the image is the plain one flipped.
    assert torch.allclose(flipped.landmarks, plain.landmarks)
    assert torch.allclose(flipped.images, plain.images.flip(-1), atol=1e-4)


@pytest.mark.parametrize("kernel", KERNELS)
def test_landmarks_follow_a_drawn_dot_through_the_full_jitter(kernel: CpuKernel) -> None:
    n, h, w = 8, 110, 90
    _, landmarks = faces(n, seed=4)
    ys, xs = np.mgrid[0:h, 0:w]
    nose = landmarks[:, 2]
    dots = np.exp(-((xs - nose[:, 0, None, None]) ** 2 + (ys - nose[:, 1, None, None]) ** 2) / 4.5)
    images = torch.from_numpy(np.repeat(dots[:, None], 3, axis=1).astype(np.float32))
    matrices = affact_alignment_matrix(landmarks, 96)
    out = AffactAugment(AffactJitter(), 96, cpu_kernel=kernel)(
        images, matrices, landmarks, torch.Generator().manual_seed(5)
    )
    assert out.landmarks is not None
    assert out.params.mirror.any() and not out.params.mirror.all()  # both cases are covered
    for i in range(n):
        row, col = np.unravel_index(int(out.images[i, 0].argmax()), (96, 96))
        x, y = out.landmarks[i, 2].tolist()
        assert abs(col - x) <= 1.0 and abs(row - y) <= 1.0

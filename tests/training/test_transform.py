"""The device-side transform: plain crops, grayscale, seed 000's x4, seeded jitter."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from faceattr.geometry import AffactJitter
from faceattr.models import InputConfig
from faceattr.training.batch import FaceBatch
from faceattr.training.transform import FaceTransform, mean_blur_2x2, seed000_offline_x4

RGB = InputConfig(size=(8, 8), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
GRAY = InputConfig(size=(8, 8), channels=1, mean=(0.0,), std=(1.0,), grayscale=True)


def batch(n: int = 4, seed: int = 0) -> FaceBatch:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=generator)
    identity = torch.eye(2, 3, dtype=torch.float64).expand(n, 2, 3).clone()
    labels = torch.randint(0, 2, (n, 3), dtype=torch.uint8, generator=generator)
    return FaceBatch(images, identity, labels)


def test_evaluation_crops_and_normalises_without_randomness() -> None:
    faces = batch()
    images, targets = FaceTransform(RGB, AffactJitter()).eval_batch(faces)
    assert torch.allclose(images, (faces.images / 255.0 - 0.5) / 0.25, atol=1e-5)
    assert targets.dtype == torch.float32 and torch.equal(targets, faces.labels.float())


def test_grayscale_matches_pil_luma() -> None:
    faces = batch()
    images, _ = FaceTransform(GRAY, AffactJitter.off()).eval_batch(faces)
    pil = [
        np.asarray(Image.fromarray(img.permute(1, 2, 0).numpy()).convert("L"), np.float32)
        for img in faces.images
    ]
    assert images.shape == (4, 1, 8, 8)
    assert np.abs(images[:, 0].numpy() * 255 - np.stack(pil)).max() <= 1.0


def test_mean_blur_is_opencvs_2x2_blur() -> None:
    image = np.random.default_rng(1).random((7, 9)).astype(np.float32)
    ours = mean_blur_2x2(torch.from_numpy(image)[None, None])[0, 0].numpy()
    assert ours == pytest.approx(cv2.blur(image, (2, 2)), abs=1e-6)


def test_seed000_offline_gives_four_versions_of_each_image() -> None:
    images = torch.rand(2, 1, 5, 5)
    labels = torch.tensor([[1, 0], [0, 1]])
    out, out_labels = seed000_offline_x4(images, labels)
    assert out.shape == (8, 1, 5, 5)
    assert torch.equal(out[:2], images) and torch.equal(out[2:4], images.flip(-1))
    assert torch.equal(out[4:6], mean_blur_2x2(images))
    assert torch.equal(out[6:], mean_blur_2x2(images.flip(-1)))
    assert torch.equal(out_labels, labels.repeat(4, 1))


def test_training_jitter_is_seeded_and_seed000_quadruples_the_batch() -> None:
    transform = FaceTransform(RGB, AffactJitter(), seed000_offline=True)
    first, labels = transform.train_batch(batch(), torch.Generator().manual_seed(7))
    again, _ = transform.train_batch(batch(), torch.Generator().manual_seed(7))
    other, _ = transform.train_batch(batch(), torch.Generator().manual_seed(8))
    assert first.shape == (16, 3, 8, 8) and labels.shape == (16, 3)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_channels_last_memory() -> None:
    images, _ = FaceTransform(RGB, AffactJitter.off(), channels_last=True).eval_batch(batch())
    assert images.is_contiguous(memory_format=torch.channels_last)

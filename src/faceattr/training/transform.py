"""From loose crops on the device to the normalised batch a model expects: one warp per image
(with AFFACT jitter while training), seed 000's offline x4, grayscale, normalisation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from faceattr.geometry import warp_affine
from faceattr.geometry.augment import AffactAugment, CpuKernel
from faceattr.geometry.jitter import AffactJitter
from faceattr.models import InputConfig
from faceattr.training.batch import FaceBatch

CPU_KERNEL: CpuKernel = "torch"
"""AffactAugment's batched torch path on a CPU: its OpenCV thread pool, interleaved with the
model's own torch threads, made every training step about 7x slower here (facenet-mtl, 2 cores:
42 s against 6 s per epoch of 8,000 real images). Other devices always use the torch path."""
LUMA = (0.299, 0.587, 0.114)
"""ITU-R 601 weights, as PIL's ``convert("L")`` (the plain preprocessing path) uses."""


def to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)`` luma of an RGB batch ``(N, 3, H, W)``."""
    weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device)
    return (images * weights[:, None, None]).sum(dim=1, keepdim=True)


def mean_blur_2x2(images: torch.Tensor) -> torch.Tensor:
    """OpenCV's ``cv2.blur(image, (2, 2))``: each pixel the mean of itself and its upper-left
    neighbours (an even kernel's anchor is pixel (1, 1)); the border is OpenCV's default
    ``BORDER_REFLECT_101`` (torch's ``reflect``)."""
    padded = F.pad(images, (1, 0, 1, 0), mode="reflect")
    return F.avg_pool2d(padded, kernel_size=2, stride=1)


def seed000_offline_x4(
    images: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Seed 000's augmentation: each image, its mirror, its 2x2 mean blur and the blurred mirror
    (4x the batch, in that order); labels repeat accordingly."""
    mirrored = images.flip(-1)
    out = torch.cat([images, mirrored, mean_blur_2x2(images), mean_blur_2x2(mirrored)])
    return out, labels.repeat(4, 1)


@dataclass(frozen=True)
class FaceTransform:
    """Turns a :class:`FaceBatch` already on the device into ``(inputs, targets)`` for the model.

    Training batches get the AFFACT ``jitter`` composed with their crop (one resampling per
    image), drawn from a ``torch.Generator`` on the device, then ``seed000_offline`` when set;
    evaluation batches are only cropped. ``channels_last`` returns NHWC memory for the GPU.
    """

    input_config: InputConfig
    jitter: AffactJitter
    seed000_offline: bool = False
    channels_last: bool = False

    def train_batch(
        self, batch: FaceBatch, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented, normalised inputs and float targets."""
        augment = AffactAugment(self.jitter, self.input_config.size, cpu_kernel=CPU_KERNEL)
        images = augment(batch.images, batch.crops, generator=generator).images
        labels = batch.labels
        if self.seed000_offline:
            images, labels = seed000_offline_x4(images, labels)
        return self._finish(images), labels.float()

    def eval_batch(self, batch: FaceBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Cropped, normalised inputs and float targets (no randomness)."""
        images = warp_affine(batch.images, batch.crops, self.input_config.size)
        return self._finish(images), batch.labels.float()

    def _finish(self, images: torch.Tensor) -> torch.Tensor:
        config = self.input_config
        if config.grayscale:
            images = to_grayscale(images)
            if config.channels == 3:
                images = images.expand(-1, 3, -1, -1)
        images = config.normalize(images)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

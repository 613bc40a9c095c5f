"""The AFFACT augmentation of a whole batch: one warp per image, then blur, gamma, temperature."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from faceattr.geometry.affine import Size, as_hw, compose, transform_points
from faceattr.geometry.alignment import MIRROR_ORDER
from faceattr.geometry.jitter import AffactJitter, JitterParams, jitter_matrix, sample_jitter
from faceattr.geometry.opencv_pixels import Photometric, opencv_can_render, opencv_pixels
from faceattr.geometry.photometric import adjust_gamma, apply_channel_gains, gaussian_blur
from faceattr.geometry.warp import grid_sample_warp

CpuKernel = Literal["opencv", "torch"]
"""Who does the pixel work of a CPU batch: OpenCV per image in a thread pool, or the batched
torch path that other devices use."""


@dataclass(frozen=True)
class AugmentedBatch:
    """Augmented images with their landmarks, the matrices that made them and the draws."""

    images: torch.Tensor
    """``(N, C, h, w)`` float32 in [0, 1], on the source images' device (channels-last memory
    when the OpenCV kernel made them)."""
    matrices: torch.Tensor
    """``(N, 2, 3)`` float64 source -> output pixel matrices (alignment, jitter and mirror)."""
    params: JitterParams
    landmarks: torch.Tensor | None = None
    """``(N, 5, 2)`` float64 landmarks in output pixels, left/right swapped where mirrored."""


def mirror_landmark_order(landmarks: torch.Tensor, mirror: torch.Tensor) -> torch.Tensor:
    """Swap left and right landmarks (eyes, mouth corners) of the ``mirror``-ed rows."""
    swapped = landmarks[:, list(MIRROR_ORDER)]
    return torch.where(mirror.to(landmarks.device)[:, None, None], swapped, landmarks)


@dataclass(frozen=True)
class AffactAugment:
    """AFFACT's random perturbations (``cfg``) applied to batches, cropping to ``out_size``.

    ``source_matrices`` map each source image onto the aligned crop (e.g.
    ``affact_alignment_matrix(landmarks, out_size)``); the jitter is composed with them so each
    image is resampled once. Draws come from ``generator`` (a seeded ``torch.Generator``
    reproduces a batch exactly); pixel work runs on the images' device. Other devices take the
    whole batch through ``grid_sample``, the banded blur and the gamma power at once. CPU batches
    (up to four channels, no autograd) go, with ``cpu_kernel="opencv"``, through OpenCV one image
    per thread (``faceattr.geometry.opencv_pixels``: the same maths in about a third of the CPU
    time, as close as the OpenCV version allows); with ``"torch"``, through the batched path
    ``cpu_chunk`` images at a time in order of blur sigma, so each step stays in cache and blurs
    with a short kernel.
    """

    cfg: AffactJitter = field(default_factory=AffactJitter)
    out_size: Size = 224
    cpu_chunk: int = 8
    cpu_kernel: CpuKernel = "opencv"

    def __call__(
        self,
        images: torch.Tensor,
        source_matrices: np.ndarray | torch.Tensor,
        landmarks: np.ndarray | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> AugmentedBatch:
        """Augment ``(N, C, H, W)`` uint8 or [0, 1] float images with ``(N, 5, 2)`` landmarks."""
        params = sample_jitter(images.shape[0], self.cfg, self.out_size, generator)
        jitter = jitter_matrix(params, self.out_size)
        matrices = compose(jitter, torch.as_tensor(source_matrices, dtype=torch.float64))
        if self.cpu_kernel == "opencv" and opencv_can_render(images):
            out = opencv_pixels(images, matrices, self.out_size, self._photometric(params))
        elif images.device.type == "cpu" and images.shape[0] > self.cpu_chunk:
            height, width = as_hw(self.out_size)
            out = torch.empty(images.shape[0], images.shape[1], height, width)
            for chunk in params.blur_sigma.cpu().argsort().split(self.cpu_chunk):
                out.index_copy_(
                    0, chunk, self._pixels(images[chunk], matrices[chunk], params, chunk)
                )
        else:
            out = self._pixels(images, matrices, params, slice(None))
        moved = None
        if landmarks is not None:
            points = transform_points(matrices, torch.as_tensor(landmarks, dtype=torch.float64))
            moved = mirror_landmark_order(points, params.mirror)
        return AugmentedBatch(images=out, matrices=matrices, params=params, landmarks=moved)

    def _photometric(self, params: JitterParams) -> Photometric:
        """The enabled photometric draws, for ``opencv_pixels``."""
        cfg = self.cfg
        return Photometric(
            blur_sigma=params.blur_sigma.cpu().numpy() if cfg.blur_enabled else None,
            gamma=params.gamma.cpu().numpy() if cfg.gamma_enabled else None,
            channel_gain=params.channel_gain.cpu().numpy() if cfg.temperature_enabled else None,
        )

    def _pixels(
        self,
        images: torch.Tensor,
        matrices: torch.Tensor,
        params: JitterParams,
        rows: torch.Tensor | slice,
    ) -> torch.Tensor:
        """Warp, blur, gamma and colour temperature for the ``rows`` of the batch, in torch."""
        out = grid_sample_warp(images, matrices, self.out_size)
        if self.cfg.blur_enabled:
            out = gaussian_blur(out, params.blur_sigma[rows])
        if self.cfg.gamma_enabled:
            out = adjust_gamma(out, params.gamma[rows])
        if self.cfg.temperature_enabled:
            out = apply_channel_gains(out, params.channel_gain[rows])
        return out

"""The AFFACT augmentation of a whole batch: one warp per image, then blur, gamma, temperature."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from faceattr.geometry.affine import Size, as_hw, compose, transform_points
from faceattr.geometry.alignment import MIRROR_ORDER
from faceattr.geometry.jitter import AffactJitter, JitterParams, jitter_matrix, sample_jitter
from faceattr.geometry.photometric import adjust_gamma, apply_channel_gains, gaussian_blur
from faceattr.geometry.warp import warp_affine


@dataclass(frozen=True)
class AugmentedBatch:
    """Augmented images with their landmarks, the matrices that made them and the draws."""

    images: torch.Tensor
    """``(N, C, h, w)`` float32 in [0, 1], on the source images' device."""
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
    reproduces a batch exactly); pixel work runs on the images' device. On CPU, images go
    ``cpu_chunk`` at a time in order of blur sigma, so each step stays in cache and blurs with a
    short kernel; on other devices the whole batch goes at once.
    """

    cfg: AffactJitter = field(default_factory=AffactJitter)
    out_size: Size = 224
    cpu_chunk: int = 8

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
        if images.device.type == "cpu" and images.shape[0] > self.cpu_chunk:
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

    def _pixels(
        self,
        images: torch.Tensor,
        matrices: torch.Tensor,
        params: JitterParams,
        rows: torch.Tensor | slice,
    ) -> torch.Tensor:
        """Warp, blur, gamma and colour temperature for the ``rows`` of the batch."""
        out = warp_affine(images, matrices, self.out_size)
        if self.cfg.blur_enabled:
            out = gaussian_blur(out, params.blur_sigma[rows])
        if self.cfg.gamma_enabled:
            out = adjust_gamma(out, params.gamma[rows])
        if self.cfg.temperature_enabled:
            out = apply_channel_gains(out, params.channel_gain[rows])
        return out

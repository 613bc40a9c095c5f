"""What a batch of faces is, apart from where it comes from: :class:`FaceBatch` (loose crops, the
matrices to the model's crop, labels) and :class:`CropSpec` (a crop kind at the model's size).
Training (``datamodule``), evaluation and the predictor share them; nothing here needs Lightning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from faceattr.training.config import DataConfig
from faceattr.training.crops import (
    check_crop_inputs,
    crop_matrices,
    detected_crop_matrices,
    fill_canonical_landmarks,
    missing_for_crop,
)


@dataclass
class FaceBatch:
    """A batch on its way to the device (a plain dataclass, so Lightning moves it with ``to``)."""

    images: torch.Tensor
    """``(B, 3, S, S)`` uint8 loose crops."""
    crops: torch.Tensor
    """``(B, 2, 3)`` float64 loose-crop pixels -> model-input pixels."""
    labels: torch.Tensor
    """``(B, K)`` float32 in {0, 1}, NaN where missing; the model's attributes."""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @classmethod
    def cat(cls, batches: Sequence[FaceBatch]) -> FaceBatch:
        """The faces of ``batches`` in one batch, in that order."""
        if len(batches) == 1:
            return batches[0]
        return cls(
            torch.cat([b.images for b in batches]),
            torch.cat([b.crops for b in batches]),
            torch.cat([b.labels for b in batches]),
        )

    def to(self, device: torch.device | str, non_blocking: bool = False) -> FaceBatch:
        """The same batch on ``device``."""
        return FaceBatch(
            *(
                t.to(device, non_blocking=non_blocking)
                for t in (self.images, self.crops, self.labels)
            )
        )

    def pin_memory(self) -> FaceBatch:
        """The same batch in page-locked memory (``DataLoader(pin_memory=True)`` calls this)."""
        return FaceBatch(*(t.pin_memory() for t in (self.images, self.crops, self.labels)))


@dataclass(frozen=True)
class CropSpec:
    """A crop kind at the model's input size (see :func:`faceattr.training.crops.crop_matrices`);
    ``canonical_landmarks`` gives faces without landmarks the aligned set's mean ones."""

    kind: str
    out_size: tuple[int, int]
    box_scale: float
    canonical_landmarks: bool = False

    @classmethod
    def of_config(cls, data: Mapping[str, Any], out_size: tuple[int, int]) -> CropSpec:
        """The crop of a model trained with the ``data`` section ``data`` of its config (the
        training defaults where a key is absent), at ``out_size``."""
        return cls(
            kind=str(data.get("crop", DataConfig.crop)),
            out_size=out_size,
            box_scale=float(data.get("box_scale", DataConfig.box_scale)),
            canonical_landmarks=bool(
                data.get("canonical_landmarks", DataConfig.canonical_landmarks)
            ),
        )

    def _landmarks(self, landmarks: np.ndarray) -> np.ndarray:
        return fill_canonical_landmarks(landmarks) if self.canonical_landmarks else landmarks

    def missing(self, landmarks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: faces that lack what the crop needs."""
        return missing_for_crop(self.kind, self._landmarks(landmarks), boxes)

    def check(self, landmarks: np.ndarray, boxes: np.ndarray, image_ids: np.ndarray) -> None:
        """Raise ``ValueError`` naming the images that lack what the crop needs."""
        check_crop_inputs(self.kind, self._landmarks(landmarks), boxes, image_ids)

    def matrices(self, landmarks: np.ndarray, boxes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Source -> crop matrices of these faces."""
        return crop_matrices(
            self.kind, self._landmarks(landmarks), boxes, sizes, self.out_size, self.box_scale
        )

    def detected_matrices(self, boxes: np.ndarray) -> np.ndarray:
        """Source -> crop matrices of faces known only by a detector box (``(N, 4)``)."""
        return detected_crop_matrices(self.kind, boxes, self.out_size, self.box_scale)

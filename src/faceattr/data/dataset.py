"""A PyTorch ``Dataset`` over the images of a loaded :class:`~faceattr.data.record.FaceDataset`.

An unreadable image never stops a long job: its item is None, a warning names the file, and
:func:`collate_skip_none` drops it from the batch and counts it in ``batch["skipped"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypedDict

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset, default_collate

from faceattr.data.record import SPLITS, FaceDataset
from faceattr.image_files import open_image

log = logging.getLogger(__name__)

Split = str | Sequence[str] | Sequence[int] | np.ndarray


class FaceItem(TypedDict, total=False):
    """One image; ``landmarks``/``box`` only when the image set has those files (NaN: no row)."""

    image: torch.Tensor  # uint8 (3, H, W) RGB, or whatever ``transform`` returns
    labels: torch.Tensor  # float32 (K,), NaN where missing
    index: int  # row of the dataset
    image_id: str
    landmarks: torch.Tensor  # float32 (5, 2)
    box: torch.Tensor  # float32 (4,)


def select_rows(celeba: FaceDataset, split: Split) -> np.ndarray:
    """Row indices for ``split``: split name(s) (present images), image ids, or row indices."""
    if isinstance(split, str):
        return celeba.split_indices(split)
    chosen = np.asarray(split)
    if chosen.dtype.kind in "US" or chosen.dtype == object:
        names = chosen.astype(str)
        if len(names) and set(names) <= {*SPLITS, "all"}:
            return celeba.split_indices(list(names))
        rows = pd.Index(celeba.image_ids).get_indexer(names)
        unknown = names[rows < 0]
        if len(unknown):
            raise KeyError(f"{len(unknown)} image ids are not annotated, e.g. {unknown[0]!r}")
        return rows.astype(np.int64)
    if len(chosen) and (
        chosen.dtype.kind not in "iu" or chosen.min() < 0 or chosen.max() >= len(celeba)
    ):
        raise IndexError(f"row indices must be integers in [0, {len(celeba)})")
    return chosen.astype(np.int64)


def read_image(path: str) -> torch.Tensor | None:
    """The image at ``path`` as uint8 RGB (3, H, W), or None (with a warning) if unreadable or
    over the pixel budget."""
    try:
        with open_image(path) as image:
            pixels = np.array(image.convert("RGB"))
    except (OSError, SyntaxError, ValueError) as exc:
        log.warning("skipping unreadable image %s: %s", path, exc)
        return None
    return torch.from_numpy(pixels).permute(2, 0, 1)


class FaceImageDataset(Dataset):
    """Images of ``split`` with their labels (the ``attributes`` columns, default all)."""

    def __init__(
        self,
        celeba: FaceDataset,
        split: Split = "train",
        attributes: Sequence[str] | None = None,
        transform: Callable[[torch.Tensor], Any] | None = None,
    ) -> None:
        self.celeba = celeba
        self.rows = select_rows(celeba, split)
        self.attributes = tuple(celeba.attribute_names if attributes is None else attributes)
        unknown = [a for a in self.attributes if a not in celeba.attribute_names]
        if unknown:
            raise KeyError(f"unknown attribute {unknown[0]!r}")
        self.columns = [celeba.attribute_names.index(a) for a in self.attributes]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> FaceItem | None:
        row = int(self.rows[i])
        image = read_image(str(self.celeba.image_path(row)))
        if image is None:
            return None
        item = FaceItem(
            image=image if self.transform is None else self.transform(image),
            labels=torch.from_numpy(self.celeba.labels[row, self.columns]),
            index=row,
            image_id=str(self.celeba.image_ids[row]),
        )
        if self.celeba.landmarks is not None:
            item["landmarks"] = torch.from_numpy(self.celeba.landmarks[row].copy())
        if self.celeba.boxes is not None:
            item["box"] = torch.from_numpy(self.celeba.boxes[row].copy())
        return item


def collate_skip_none(batch: list[FaceItem | None]) -> dict[str, Any] | None:
    """``default_collate`` without the None items; ``skipped`` counts them. None if all were."""
    kept = [item for item in batch if item is not None]
    if not kept:
        return None
    collated: dict[str, Any] = default_collate(kept)
    collated["skipped"] = len(batch) - len(kept)
    return collated

"""A face dataset as one record of aligned numpy columns, whatever its files looked like.

Every loader (``faceattr.data.loaders``: CelebA, CelebA-HQ, LFWA, UTKFace, a folder with a CSV)
returns a :class:`FaceDataset`: image ids and files, the attribute schema, labels with missing
values as NaN, the partition, identities, landmarks and boxes when known, which image set the
files are (CelebA's aligned frame, or photos) and each image's size when known. Code above the
loaders reads only this record.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from faceattr.data.formats import SPLIT_CODES
from faceattr.data.schema import Schema

ImageSet = Literal["align", "wild"]
"""``align``: every image is in CelebA's aligned 178x218 frame (mean landmarks apply);
``wild``: photos or crops in any other frame (landmarks come from files or a detector)."""
SPLITS: tuple[str, ...] = ("train", "val", "test")
DETECTED_STEMS: tuple[str, str] = ("landmarks", "boxes")
"""File stems of the landmark and box files the detector writes for every format but CelebA."""


class DatasetError(ValueError):
    """A dataset folder with errors: what ``faceattr data check`` reports as errors."""


def cache_home() -> Path:
    """faceattr's cache folder: ``$FACEATTR_CACHE``, default ``~/.cache/faceattr``."""
    return Path(os.environ.get("FACEATTR_CACHE", "~/.cache/faceattr")).expanduser()


def annotation_cache_dir(root: str | Path) -> Path:
    """Where annotations derived for ``root`` go: ``$FACEATTR_CACHE/annotations/<name>-<hash>``.

    The hash is the first 8 hex digits of the SHA-1 of the resolved root path, so two roots with
    the same name do not share annotations.
    """
    resolved = Path(root).resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    return cache_home() / "annotations" / f"{resolved.name}-{digest}"


@dataclass
class FaceDataset:
    """One dataset, every column aligned by row ``i``.

    ``labels`` is ``(N, K)`` float32 in the schema's columns, NaN where an image lacks that label;
    ``partition`` (0 train, 1 val, 2 test) and ``identity`` hold -1, ``landmarks``/``boxes`` NaN
    for rows their source lacks; a column is None when the dataset has none. ``present`` marks the
    images on disk; ``sizes`` is ``(N, 2)`` width, height (-1 unknown) or None.
    """

    format: str
    root: Path
    image_dir: Path
    image_ids: np.ndarray
    schema: Schema
    labels: np.ndarray
    partition: np.ndarray | None
    identity: np.ndarray | None
    landmarks: np.ndarray | None
    boxes: np.ndarray | None
    present: np.ndarray
    image_set: ImageSet = "wild"
    sizes: np.ndarray | None = None
    files: dict[str, Path] = field(default_factory=dict)
    partition_source: str = "dataset"
    """``dataset`` (a file the dataset ships) or how a generated partition was drawn and saved."""
    geometry_stems: tuple[str, str] = DETECTED_STEMS
    """File stems (``.txt``/``.csv``) of the landmark and box files derived for this dataset."""

    def __post_init__(self) -> None:
        n = len(self.image_ids)
        if self.labels.shape != (n, len(self.schema)):
            raise ValueError(f"labels must be ({n}, {len(self.schema)}), got {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def attribute_names(self) -> tuple[str, ...]:
        """The schema's attribute names, in column order."""
        return self.schema.names

    @property
    def known(self) -> np.ndarray:
        """``(N, K)`` bool: where a label is given."""
        return ~np.isnan(self.labels)

    def split_indices(self, split: str | Sequence[str]) -> np.ndarray:
        """Rows of the present images in ``split`` ('train', 'val', 'test', 'all' or several)."""
        names = [split] if isinstance(split, str) else list(split)
        unknown = [s for s in names if s not in (*SPLITS, "all")]
        if unknown:
            raise ValueError(
                f"unknown split {unknown[0]!r}; expected one of {', '.join(SPLITS)}, all"
            )
        if "all" in names:
            return np.flatnonzero(self.present)
        if self.partition is None:
            raise ValueError(f"{self.root}: no partition, so no {names[0]!r} split")
        codes = [SPLIT_CODES[s] for s in names]
        return np.flatnonzero(self.present & np.isin(self.partition, codes))

    def image_path(self, i: int) -> Path:
        """The image file of row ``i``."""
        return self.image_dir / str(self.image_ids[i])

    def image_size(self, i: int) -> tuple[int, int] | None:
        """Width and height of row ``i``'s image when the dataset records it."""
        if self.sizes is None or self.sizes[i, 0] < 0:
            return None
        return int(self.sizes[i, 0]), int(self.sizes[i, 1])

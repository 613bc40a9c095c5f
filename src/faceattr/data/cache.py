"""The packed image cache: loose face crops decoded once, read back as memory-mapped batches.

``faceattr data prepare`` (``faceattr.data.cache_prepare``) writes a folder of plain ``.npy`` files
and one JSON file; this module reads it. Training draws batches straight from the memory map, with
no JPEG decoding, and applies the AFFACT warp to the whole batch on the device::

    cache = PackedCache("cache/")
    sampler = CacheBatchSampler(cache.split_indices("train"), batch_size=256, seed=0)
    loader = DataLoader(CacheBatchDataset(cache), sampler=sampler, batch_size=None, num_workers=2)
    augment = AffactAugment(AffactJitter(), out_size=224)
    for batch in loader:  # CacheBatch: uint8 images (B, 3, S, S), labels, matrices, landmarks
        batch = batch.to("cuda", non_blocking=True)
        aligned = cache.alignment_matrices(len(batch), 224)
        images = augment(batch.images, aligned, batch.landmarks, generator).images

Each crop is upright and centred, so one matrix aligns every row (``alignment_matrices``); the
stored cache-space landmarks move with the jitter.

Folder layout (row ``i`` of every array is the same image):

========================  ====================================================================
``cache.json``            size, margin, image set, source root, attribute names and kinds, counts
``images.npy``            ``(N, S, S, 3)`` uint8 crops (zeros where an image was skipped)
``status.npy``            ``(N,)`` uint8: 0 pending, 1 written, 2 skipped (unreadable)
``matrices.npy``          ``(N, 2, 3)`` float64 source pixel -> cache pixel
``crop_source.npy``       ``(N,)`` int8: what the crop was built from (``CROP_SOURCES``)
``landmarks.npy``         ``(N, 5, 2)`` float32 landmarks in cache pixels, NaN where unknown
``boxes.npy``             ``(N, 4, 2)`` float32 corners of the source box in cache pixels, or NaN
``image_ids.npy``         ``(N,)`` unicode image ids
``labels.npy``            ``(N, K)`` float32 labels in {0, 1}, NaN where missing
``partition.npy``         ``(N,)`` int8: 0 train, 1 val, 2 test, -1 unknown
``identity.npy``          ``(N,)`` int32 identities, -1 unknown
``skipped.tsv``           ``row<TAB>image_id<TAB>reason`` of every image that was not decodable
========================  ====================================================================
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from faceattr.data.formats import SPLIT_CODES
from faceattr.data.record import ImageSet
from faceattr.data.schema import Schema
from faceattr.geometry.affine import Size, as_hw, similarity_matrix

CACHE_FORMAT = "faceattr-packed-cache"
CACHE_VERSION = 1
INFO_FILE = "cache.json"
SKIPPED_FILE = "skipped.tsv"
CROP_SOURCES = ("landmarks", "box", "whole_image")
"""Index -> what a crop was built from: the AFFACT box of the landmarks, the detector/dataset box,
or the whole image (neither known)."""
PENDING, WRITTEN, SKIPPED = 0, 1, 2


@dataclass(frozen=True)
class CacheInfo:
    """What ``cache.json`` says about a cache."""

    size: int
    margin: float
    image_set: ImageSet
    count: int
    source_root: str
    splits: tuple[str, ...]
    attribute_names: tuple[str, ...]
    complete: bool
    crop_sources: dict[str, int] = field(default_factory=dict)
    skipped: int = 0
    dataset_format: str = "celeba"
    schema: list[dict[str, Any]] = field(default_factory=list)
    """The labels' attributes with their kinds (``Schema.to_json``); empty in older caches."""

    def attribute_schema(self) -> Schema:
        """The labels' schema (all binary for a cache written before kinds were recorded)."""
        return Schema.from_json(self.schema) if self.schema else Schema.binary(self.attribute_names)

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys, no timestamps) so re-runs write identical files."""
        payload: dict[str, Any] = {"format": CACHE_FORMAT, "version": CACHE_VERSION}
        payload.update(self.__dict__)
        payload["splits"] = list(self.splits)
        payload["attribute_names"] = list(self.attribute_names)
        return json.dumps(payload, indent=2, sort_keys=True) + "\n"

    @classmethod
    def read(cls, path: Path) -> CacheInfo:
        """Parse ``cache.json``, naming the file when it is not a packed cache of this version."""
        try:
            payload = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(
                f"{path}: not a readable packed-cache description ({error})"
            ) from error
        if payload.get("format") != CACHE_FORMAT or payload.get("version") != CACHE_VERSION:
            raise ValueError(f"{path}: not a {CACHE_FORMAT} version {CACHE_VERSION} description")
        fields = {k: payload[k] for k in cls.__dataclass_fields__ if k in payload}
        fields["splits"] = tuple(fields["splits"])
        fields["attribute_names"] = tuple(fields["attribute_names"])
        return cls(**fields)


@dataclass(frozen=True)
class CacheBatch:
    """A batch read from the cache, ready to move to the device and augment there."""

    images: torch.Tensor
    """``(B, 3, S, S)`` uint8 (a channels-last view of the stored rows)."""
    labels: torch.Tensor
    """``(B, K)`` float32 in {0, 1}, NaN where missing."""
    matrices: torch.Tensor
    """``(B, 2, 3)`` float64 source pixel -> cache pixel."""
    landmarks: torch.Tensor
    """``(B, 5, 2)`` float32 cache pixels, NaN where unknown."""
    indices: torch.Tensor
    """``(B,)`` int64 cache rows."""

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> CacheBatch:
        """The same batch on ``device``."""
        moved = {k: v.to(device, non_blocking=non_blocking) for k, v in self.__dict__.items()}
        return CacheBatch(**moved)

    def pin_memory(self) -> CacheBatch:
        """The same batch in page-locked memory (``DataLoader(pin_memory=True)`` calls this)."""
        return CacheBatch(**{k: v.pin_memory() for k, v in self.__dict__.items()})


class PackedCache:
    """A prepared cache folder, opened read-only with ``np.memmap``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.info = CacheInfo.read(self.path / INFO_FILE)
        if not self.info.complete:
            raise ValueError(
                f"{self.path}: the cache is incomplete; run `faceattr data prepare` again with the "
                "same arguments to finish it"
            )
        self.status: np.ndarray = self._load("status")
        self.image_ids: np.ndarray = self._load("image_ids")
        self.labels: np.ndarray = np.asarray(self._load("labels"), dtype=np.float32)
        self.partition: np.ndarray = self._load("partition")
        self.identity: np.ndarray = self._load("identity")
        self.matrices: np.ndarray = self._load("matrices")
        self.landmarks: np.ndarray = self._load("landmarks")
        self.boxes: np.ndarray = self._load("boxes")
        self.crop_source: np.ndarray = self._load("crop_source")
        self._images: np.ndarray | None = None

    def _load(self, name: str) -> np.ndarray:
        array = np.load(self.path / f"{name}.npy", allow_pickle=False)
        if len(array) != self.info.count:
            raise ValueError(
                f"{self.path / name}.npy: {len(array)} rows, cache.json says {self.info.count}"
            )
        return array

    @property
    def images(self) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 memory map of the crops (opened on first use, per process)."""
        if self._images is None:
            self._images = np.load(self.path / "images.npy", mmap_mode="r")
        return self._images

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_images"] = None  # a worker process maps the file itself instead of copying it
        return state

    @property
    def size(self) -> int:
        """Side of the square crops, in pixels."""
        return self.info.size

    def __len__(self) -> int:
        return self.info.count

    def alignment_matrices(self, count: int, out_size: Size = 224) -> torch.Tensor:
        """``(count, 2, 3)`` float64 cache -> aligned crop matrices, for ``AffactAugment``.

        They map the centre ``size / margin`` square of every crop onto ``out_size``: for a crop
        built from landmarks that square is the upright AFFACT box, so this equals
        ``affact_alignment_matrix`` of the cache-space landmarks; for a box crop it is the box x2.
        """
        height, width = as_hw(out_size)
        side = self.info.size / self.info.margin
        centre = np.full((1, 2), (self.info.size - 1) / 2.0)
        matrix = similarity_matrix(
            centre, np.array([min(height, width) / side]), np.zeros(1), out_size
        )
        return torch.from_numpy(matrix).expand(count, 2, 3)

    def split_indices(self, split: str | None = None) -> np.ndarray:
        """Sorted rows of the written images of ``split`` ("train", "val", "test"; None for all)."""
        keep = self.status == WRITTEN
        if split is not None:
            if split not in SPLIT_CODES:
                raise ValueError(
                    f"unknown split {split!r}; expected one of {', '.join(SPLIT_CODES)}"
                )
            keep &= self.partition == SPLIT_CODES[split]
        return np.flatnonzero(keep)

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> CacheBatch:
        """Read the rows ``indices`` (in that order; sorted order reads the file sequentially)."""
        rows = np.asarray(indices, dtype=np.int64)
        if rows.ndim != 1:
            raise ValueError(f"indices must be one-dimensional, got shape {rows.shape}")
        if rows.size and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(
                f"cache rows must lie in [0, {len(self)}), got {rows.min()}..{rows.max()}"
            )
        images = torch.from_numpy(self.images[rows]).permute(0, 3, 1, 2)
        return CacheBatch(
            images=images,
            labels=torch.from_numpy(self.labels[rows]),
            matrices=torch.from_numpy(self.matrices[rows]),
            landmarks=torch.from_numpy(self.landmarks[rows]),
            indices=torch.from_numpy(rows),
        )


class CacheBatchDataset(Dataset[CacheBatch]):
    """A map-style dataset whose items are whole batches: ``dataset[list_of_rows] -> CacheBatch``.

    Use with ``DataLoader(dataset, sampler=CacheBatchSampler(...), batch_size=None)``: each
    sampler item is a sorted list of rows, read from the memory map in one slice.
    """

    def __init__(self, cache: PackedCache) -> None:
        self.cache = cache

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, rows: Sequence[int]) -> CacheBatch:
        return self.cache.get_batch(rows)


class CacheBatchSampler(Sampler[list[int]]):
    """Batches of rows, shuffled per epoch from ``(seed, epoch)``, each sorted for the reader."""

    def __init__(
        self,
        indices: Sequence[int] | np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.indices = np.asarray(indices, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(len(self.indices), self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self) -> Iterator[list[int]]:
        order = self.indices
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(order)
        for batch in range(len(self)):
            rows = order[batch * self.batch_size : (batch + 1) * self.batch_size]
            yield np.sort(rows).tolist()

"""Training data as whole batches of loose face crops, from the packed cache or decoded on the fly.

Either way a batch is a :class:`FaceBatch`: uint8 loose crops, the matrix taking each to the crop
the model sees, and the labels. The crop itself (and any jitter) is one warp done on the device
after transfer (``faceattr.training.transform``), so both paths feed the model the same pixels.

- cache (``data.cache``): rows are read from the memory-mapped cache, no JPEG decoding; the cache
  is written first (by one process) when it is missing or unfinished.
- decode (no cache): each image is decoded through ``FaceImageDataset`` and warped into the same
  loose crop as ``faceattr data prepare`` would store.

Batches are shuffled per epoch from ``(seed, epoch)``; under DDP each process takes every
``world_size``-th image of the epoch; training drops the last incomplete batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from faceattr.data.cache import INFO_FILE, CacheInfo, PackedCache
from faceattr.data.cache_prepare import loose_crop_matrices, prepare_cache
from faceattr.data.cache_writer import warp_to_uint8
from faceattr.data.dataset import FaceImageDataset
from faceattr.data.record import SPLITS, FaceDataset
from faceattr.geometry import ALIGNED_IMAGE_SIZE, MEAN_ALIGNED_LANDMARKS
from faceattr.geometry.affine import Size
from faceattr.geometry.frame import MEAN_ALIGNED_BOX
from faceattr.training.batch import CropSpec, FaceBatch
from faceattr.training.config import DataConfig
from faceattr.training.crops import corners_to_boxes, loose_to_crop_matrices, to_source
from faceattr.training.folds import assign_folds

logger = logging.getLogger(__name__)


class CachedFaces(Dataset[FaceBatch]):
    """Batches of cache rows: ``dataset[rows] -> FaceBatch`` (rows sorted by the sampler)."""

    def __init__(self, cache: PackedCache, columns: Sequence[int], crops: np.ndarray) -> None:
        self.cache = cache
        self.columns = list(columns)
        self.crops = crops

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, rows: Sequence[int]) -> FaceBatch:
        batch = self.cache.get_batch(rows)
        return FaceBatch(
            images=batch.images,
            crops=torch.from_numpy(self.crops[np.asarray(rows)]),
            labels=batch.labels[:, self.columns],
        )


class DecodedFaces(Dataset[FaceBatch]):
    """Batches decoded from JPEG: ``dataset[positions] -> FaceBatch``, each image warped into
    the loose crop ``faceattr data prepare`` would store (from the same annotations, indexed by
    CelebA row); unreadable images are left out of their batch (``FaceImageDataset`` warns)."""

    def __init__(
        self,
        images: FaceImageDataset,
        landmarks: np.ndarray,
        boxes: np.ndarray,
        crop: CropSpec,
        loose_size: int,
        margin: float,
    ) -> None:
        self.images = images
        self.landmarks = landmarks
        self.boxes = boxes
        self.crop = crop
        self.loose_size = loose_size
        self.margin = margin

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, positions: Sequence[int]) -> FaceBatch:
        items = [item for item in (self.images[int(p)] for p in positions) if item is not None]
        if not items:
            raise RuntimeError(f"no readable image in batch of positions {list(positions)[:5]}...")
        rows = np.array([item["index"] for item in items])
        pixels = [item["image"].permute(1, 2, 0).numpy() for item in items]
        sizes = np.array([[p.shape[1], p.shape[0]] for p in pixels], dtype=np.float64)
        landmarks, boxes = self.landmarks[rows], self.boxes[rows]
        loose, _ = loose_crop_matrices(landmarks, boxes, sizes, self.loose_size, self.margin)
        warped = [
            warp_to_uint8(p, m[None], self.loose_size)[0]
            for p, m in zip(pixels, loose, strict=True)
        ]
        crops = loose_to_crop_matrices(self.crop.matrices(landmarks, boxes, sizes), loose)
        return FaceBatch(
            images=torch.from_numpy(np.stack(warped)).permute(0, 3, 1, 2),
            crops=torch.from_numpy(crops),
            labels=torch.stack([item["labels"] for item in items]),
        )


class ShardedBatches(Sampler[list[int]]):
    """This process's batches of ``positions`` for an epoch: shuffled from ``(seed, epoch)`` when
    ``shuffle``, every ``world``-th position from ``rank`` on, cut into batches sorted for the
    cache reader. ``drop_last`` (training) trims the epoch to whole batches in every process, so
    every DDP process takes the same number of steps and no batch of one image reaches a
    BatchNorm layer; the images left out change with each epoch's shuffle."""

    def __init__(
        self,
        positions: np.ndarray,
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        drop_last: bool = True,
    ) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside a world of {world}")
        self.positions = np.asarray(positions, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world = world
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle the next iteration yields (Lightning calls this)."""
        self.epoch = epoch

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.positions) // self.world // self.batch_size
        return -(-len(range(self.rank, len(self.positions), self.world)) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = self.positions
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(order)
        if self.drop_last:
            order = order[: len(self) * self.batch_size * self.world]
        mine = order[self.rank :: self.world]
        for start in range(0, len(mine), self.batch_size):
            yield np.sort(mine[start : start + self.batch_size]).tolist()


@dataclass(frozen=True)
class FaceSplit:
    """One split ready to load: batch dataset, the positions to sample and their labels."""

    dataset: Dataset[FaceBatch]
    positions: np.ndarray
    labels: np.ndarray
    """``(N, K)`` float32 labels of ``positions``, the model's attributes (NaN: missing)."""


def cache_is_ready(path: Path, data: DataConfig) -> bool:
    """Whether ``path`` holds a complete cache of ``data``'s root at its size and margin."""
    if not (path / INFO_FILE).is_file():
        return False
    info = CacheInfo.read(path / INFO_FILE)
    root = str(Path(data.root).expanduser().resolve())
    wanted = (data.cache_size, float(data.cache_margin), root)
    return info.complete and (info.size, info.margin, info.source_root) == wanted


def subset(positions: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """A seeded random subset of ``limit`` positions, sorted (all when ``limit`` is None)."""
    if limit is None or limit >= len(positions):
        return positions
    return np.sort(np.random.default_rng(seed).choice(positions, limit, replace=False))


UPSAMPLED = 1.3
"""A model crop cut from loose crops more than this many times smaller is blurred: say so."""


def loose_scale(crop: CropSpec, loose_size: int, margin: float) -> float:
    """How many model-input pixels one loose-crop pixel spans along the more stretched axis, on
    CelebA's mean aligned face (above 1 the model sees its crop upsampled, hence blurred)."""
    landmarks = MEAN_ALIGNED_LANDMARKS[None].astype(np.float64)
    boxes = MEAN_ALIGNED_BOX[None].astype(np.float64)
    sizes = np.array([ALIGNED_IMAGE_SIZE], dtype=np.float64)
    loose, _ = loose_crop_matrices(landmarks, boxes, sizes, loose_size, margin)
    matrix = loose_to_crop_matrices(crop.matrices(landmarks, boxes, sizes), loose)[0, :, :2]
    return float(np.linalg.svd(matrix, compute_uv=False).max())


def warn_if_upsampled(crop: CropSpec, data: DataConfig) -> None:
    """Log a warning naming ``data.cache_size`` when it is too small for ``crop``."""
    scale = loose_scale(crop, data.cache_size, data.cache_margin)
    if scale > UPSAMPLED:
        needed = int(np.ceil(data.cache_size * scale / 8.0) * 8)
        logger.warning(
            f"data.cache_size={data.cache_size} is too small for the {crop.kind} crop at "
            f"{crop.out_size[0]} px: it is upsampled {scale:.1f}x from the loose crops (blurred); "
            f"data.cache_size={needed} keeps its detail"
        )


class FaceDataModule(pl.LightningDataModule):
    """Loaders of :class:`FaceBatch` for a model's ``attributes`` and input size."""

    def __init__(
        self, data: DataConfig, attributes: Sequence[str], out_size: Size, seed: int = 0
    ) -> None:
        super().__init__()
        self.data = data
        self.attributes = tuple(attributes)
        height, width = (out_size, out_size) if isinstance(out_size, int) else out_size
        self.crop = CropSpec(data.crop, (height, width), data.box_scale, data.canonical_landmarks)
        self.seed = seed
        warn_if_upsampled(self.crop, data)
        self.splits: dict[str, FaceSplit] = {}
        self._source: PackedCache | FaceDataset | None = None

    def prepare_data(self) -> None:
        """Write the packed cache when one is configured and not ready (one process does this)."""
        if self.data.cache is None or cache_is_ready(Path(self.data.cache), self.data):
            return
        prepare_cache(
            self.data.source(),
            self.data.cache,
            size=self.data.cache_size,
            margin=self.data.cache_margin,
            workers=self.data.workers,
        )

    def open_source(self) -> PackedCache | FaceDataset:
        """The packed cache, or the dataset loaded (and validated) once."""
        if self._source is None:
            self._source = (
                PackedCache(self.data.cache)
                if self.data.cache is not None
                else self.data.source().load()
            )
        return self._source

    def setup(self, stage: str | None = None) -> None:
        """Open the cache (or the annotations) and plan the training and validation splits."""
        limits = {"train": self.data.limit_train, self.data.val_split: self.data.limit_val}
        for split, limit in limits.items():
            if split not in self.splits:
                self.splits[split] = self.split(split, limit)

    def split(self, name: str, limit: int | None = None) -> FaceSplit:
        """The images of split ``name`` (a seeded subset of ``limit`` of them)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        source = self.open_source()
        if isinstance(source, PackedCache):
            return self._cached_split(source, name, limit)
        return self._decoded_split(source, name, limit)

    def _rows(self, source: PackedCache | FaceDataset, name: str) -> np.ndarray:
        """Rows of split ``name``: the partition's, or under ``data.folds`` the other folds
        (``train``) or the held-out one (``val``) of the pooled ``data.fold_splits``."""
        if self.data.folds is None or name not in ("train", "val"):
            return source.split_indices(name)
        pool = np.sort(np.concatenate([source.split_indices(s) for s in self.data.fold_splits]))
        identity = source.identity if source.identity is not None else np.full(len(source), -1)
        held_out = (
            assign_folds(identity[pool], self.data.folds, self.data.fold_seed) == self.data.fold
        )
        return pool[held_out] if name == "val" else pool[~held_out]

    def _columns(self, names: Sequence[str], where: str) -> list[int]:
        missing = [a for a in self.attributes if a not in names]
        if missing:
            raise KeyError(f"{where} has no attribute {missing[0]!r}")
        return [list(names).index(a) for a in self.attributes]

    def _cached_split(self, cache: PackedCache, name: str, limit: int | None) -> FaceSplit:
        rows = subset(self._rows(cache, name), limit, self.seed)
        if not len(rows):
            raise ValueError(f"{cache.path}: no {name} images in the cache")
        if self.crop.kind == "image" and cache.info.image_set != "align":
            raise ValueError("crop 'image' from a cache needs the aligned image set (known size)")
        columns = self._columns(cache.info.attribute_names, str(cache.path))
        to_cache = cache.matrices[rows]
        landmarks = to_source(to_cache, cache.landmarks[rows])
        boxes = corners_to_boxes(to_source(to_cache, cache.boxes[rows]))
        self.crop.check(landmarks, boxes, cache.image_ids[rows])
        sizes = np.tile(np.asarray(ALIGNED_IMAGE_SIZE, np.float64), (len(rows), 1))
        crops = np.full((len(cache), 2, 3), np.nan)
        crops[rows] = loose_to_crop_matrices(self.crop.matrices(landmarks, boxes, sizes), to_cache)
        labels = cache.labels[rows][:, columns]
        return FaceSplit(CachedFaces(cache, columns, crops), rows, labels)

    def _decoded_split(self, celeba: FaceDataset, name: str, limit: int | None) -> FaceSplit:
        rows = subset(self._rows(celeba, name), limit, self.seed)
        if not len(rows):
            raise ValueError(f"{celeba.root}: no {name} images present")
        self._columns(celeba.attribute_names, str(celeba.root))
        n = len(celeba)
        landmarks = celeba.landmarks if celeba.landmarks is not None else np.full((n, 5, 2), np.nan)
        boxes = celeba.boxes if celeba.boxes is not None else np.full((n, 4), np.nan)
        landmarks, boxes = landmarks.astype(np.float64), boxes.astype(np.float64)
        self.crop.check(landmarks[rows], boxes[rows], celeba.image_ids[rows])
        images = FaceImageDataset(celeba, rows, self.attributes)
        dataset = DecodedFaces(
            images, landmarks, boxes, self.crop, self.data.cache_size, self.data.cache_margin
        )
        labels = np.asarray(celeba.labels[rows][:, images.columns], dtype=np.float32)
        return FaceSplit(dataset, np.arange(len(rows)), labels)

    def train_labels(self) -> np.ndarray:
        """``(N, K)`` float32 labels of the training images (for positive-class weights)."""
        self.setup()
        return self.splits["train"].labels

    def loader(self, split: FaceSplit, train: bool) -> DataLoader[FaceBatch]:
        """A loader of whole batches of ``split``: shuffled, whole batches only, when ``train``."""
        batch_size = self.data.batch_size
        if not train:
            batch_size = self.data.eval_batch_size or batch_size
        rank, world = 0, 1
        if self.trainer is not None:
            rank, world = self.trainer.global_rank, self.trainer.world_size
        batches = ShardedBatches(
            split.positions,
            batch_size,
            shuffle=train,
            seed=self.seed,
            rank=rank,
            world=world,
            drop_last=train,
        )
        return DataLoader(
            split.dataset,
            sampler=batches,
            batch_size=None,
            num_workers=self.data.workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.data.workers > 0,
        )

    def train_dataloader(self) -> DataLoader[FaceBatch]:
        """Shuffled training batches."""
        return self.loader(self.splits["train"], train=True)

    def val_dataloader(self) -> DataLoader[FaceBatch]:
        """Validation batches in file order."""
        return self.loader(self.splits[self.data.val_split], train=False)

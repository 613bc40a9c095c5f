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

Several sources (``data.sources``) are each read their own way (one cached, one decoded) and
their labels put in the model's columns, NaN where a source does not teach an attribute. A
training epoch draws each source's share of images (:func:`epoch_draw`) and shuffles them
together, so a batch mixes sources; validation keeps them apart, one loader per source.
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
from faceattr.data.schema import Schema
from faceattr.geometry import ALIGNED_IMAGE_SIZE, MEAN_ALIGNED_LANDMARKS
from faceattr.geometry.affine import Size
from faceattr.geometry.frame import MEAN_ALIGNED_BOX
from faceattr.training.batch import CropSpec, FaceBatch
from faceattr.training.config import DataConfig, SourceConfig
from faceattr.training.crops import corners_to_boxes, loose_to_crop_matrices, to_source
from faceattr.training.folds import assign_folds

logger = logging.getLogger(__name__)


def label_columns(model: Sequence[str], names: Sequence[str], taught: Sequence[str]) -> np.ndarray:
    """For each of the ``model``'s attributes its column among a source's label ``names``, -1
    where the source does not teach it (not in ``taught``)."""
    return np.array([list(names).index(a) if a in taught else -1 for a in model], np.int64)


def take_labels(labels: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``labels[:, columns]`` as float32, NaN (missing) where a column is -1."""
    taken = np.asarray(labels, dtype=np.float32)[:, np.maximum(columns, 0)]
    taken[:, columns < 0] = np.nan
    return taken


class CachedFaces(Dataset[FaceBatch]):
    """Batches of cache rows: ``dataset[rows] -> FaceBatch`` (rows sorted by the sampler), the
    labels in the model's ``columns`` (:func:`label_columns`)."""

    def __init__(self, cache: PackedCache, columns: np.ndarray, crops: np.ndarray) -> None:
        self.cache = cache
        self.columns = columns
        self.crops = crops

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, rows: Sequence[int]) -> FaceBatch:
        batch = self.cache.get_batch(rows)
        return FaceBatch(
            images=batch.images,
            crops=torch.from_numpy(self.crops[np.asarray(rows)]),
            labels=torch.from_numpy(take_labels(batch.labels.numpy(), self.columns)),
        )


class DecodedFaces(Dataset[FaceBatch]):
    """Batches decoded from JPEG: ``dataset[positions] -> FaceBatch``, each image warped into
    the loose crop ``faceattr data prepare`` would store (from the same annotations, indexed by
    CelebA row), the labels in the model's ``columns`` of the dataset's; unreadable images are
    left out of their batch (``FaceImageDataset`` warns)."""

    def __init__(
        self,
        images: FaceImageDataset,
        columns: np.ndarray,
        landmarks: np.ndarray,
        boxes: np.ndarray,
        crop: CropSpec,
        loose_size: int,
        margin: float,
    ) -> None:
        self.images = images
        self.columns = columns
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
            labels=torch.from_numpy(
                take_labels(torch.stack([item["labels"] for item in items]).numpy(), self.columns)
            ),
        )


class PooledFaces(Dataset[FaceBatch]):
    """Several sources' batch datasets as one: position ``offsets[i] + p`` is position ``p`` of
    ``datasets[i]``; a batch of positions from several sources is read from each and joined."""

    def __init__(self, datasets: Sequence[Dataset[FaceBatch]]) -> None:
        self.datasets = list(datasets)
        self.offsets = np.cumsum([0, *(len(d) for d in datasets)])  # type: ignore[arg-type]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, positions: Sequence[int]) -> FaceBatch:
        wanted = np.asarray(positions, dtype=np.int64)
        source = np.searchsorted(self.offsets, wanted, side="right") - 1
        return FaceBatch.cat(
            [
                self.datasets[i][(wanted[source == i] - self.offsets[i]).tolist()]
                for i in np.unique(source)
            ]
        )


def source_counts(sizes: Sequence[int], weights: Sequence[float]) -> np.ndarray:
    """How many of an epoch's ``sum(sizes)`` images each source gives: in proportion to
    ``weights``, rounded down, the images left over going to the largest remainders."""
    exact = sum(sizes) * np.asarray(weights, dtype=np.float64) / float(np.sum(weights))
    counts = np.floor(exact).astype(np.int64)
    leftover = int(sum(sizes) - counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:leftover]] += 1
    return counts


def epoch_draw(
    source: np.ndarray, weights: Sequence[float], rng: np.random.Generator
) -> np.ndarray:
    """One training epoch's indices into ``source`` (each image's source): ``len(source)`` of
    them, :func:`source_counts` from each source; a source with more images than its count gives
    a random subset, one with fewer repeats every image as often as fits and adds a random
    subset for the rest, one with exactly its count gives each image once (no draw)."""
    sizes = np.bincount(source, minlength=len(weights))
    drawn = []
    for i, count in enumerate(source_counts(sizes.tolist(), weights)):
        members = np.flatnonzero(source == i)
        repeats, rest = divmod(int(count), len(members))
        drawn.append(np.tile(members, repeats))
        if rest:
            drawn.append(np.sort(rng.choice(members, rest, replace=False)))
    return np.concatenate(drawn)


class ShardedBatches(Sampler[list[int]]):
    """This process's batches of ``positions`` for an epoch: shuffled from ``(seed, epoch)`` when
    ``shuffle``, every ``world``-th position from ``rank`` on, cut into batches sorted for the
    cache reader. ``drop_last`` (training) trims the epoch to whole batches in every process, so
    every DDP process takes the same number of steps and no batch of one image reaches a
    BatchNorm layer; the images left out change with each epoch's shuffle. With ``source`` (each
    position's source) and the sources' ``weights``, a shuffled epoch is :func:`epoch_draw`'s
    positions (a single source: all of them, as without)."""

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
        source: np.ndarray | None = None,
        weights: Sequence[float] = (1.0,),
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
        self.source = np.zeros(len(positions), np.int64) if source is None else source
        self.weights = tuple(weights)
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
            rng = np.random.default_rng([self.seed, self.epoch])
            order = rng.permutation(order[epoch_draw(self.source, self.weights, rng)])
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
    source: np.ndarray
    """``(N,)`` the source (index in ``data.sources``) of each of ``positions``."""
    image_ids: np.ndarray
    """``(N,)`` the image id of each of ``positions`` in its source (what a split holds, by
    name: the test that no val or test image is trained on reads it)."""


def pool(parts: Sequence[FaceSplit]) -> FaceSplit:
    """One split of the sources' splits ``parts`` (:class:`PooledFaces`; one part: itself)."""
    if len(parts) == 1:
        return parts[0]
    dataset = PooledFaces([part.dataset for part in parts])
    return FaceSplit(
        dataset,
        np.concatenate([p.positions + o for p, o in zip(parts, dataset.offsets, strict=False)]),
        np.concatenate([part.labels for part in parts]),
        np.concatenate([np.full(len(p.positions), i) for i, p in enumerate(parts)]),
        np.concatenate([part.image_ids for part in parts]),
    )


def cache_is_ready(source: SourceConfig, data: DataConfig) -> bool:
    """Whether ``source.cache`` holds a complete cache of its root at ``data``'s size and
    margin."""
    if source.cache is None or not (Path(source.cache) / INFO_FILE).is_file():
        return False
    info = CacheInfo.read(Path(source.cache) / INFO_FILE)
    root = str(Path(source.root).expanduser().resolve())
    wanted = (data.cache_size, float(data.cache_margin), root)
    return info.complete and (info.size, info.margin, info.source_root) == wanted


def taught_schema(schema: Schema, source: SourceConfig) -> Schema:
    """``schema`` (a source's labels) narrowed to the attributes ``source`` teaches."""
    if source.attributes is None:
        return schema
    unknown = [a for a in source.attributes if a not in schema]
    if unknown:
        raise KeyError(
            f"{source.label()} has no attribute {unknown[0]!r} to teach; it labels "
            f"{', '.join(schema.names)}"
        )
    return schema.select(source.attributes)


def source_schema(source: SourceConfig, data: DataConfig) -> Schema:
    """The attributes ``source`` teaches, with their kinds: its ready cache's, else its
    dataset's (loaded)."""
    if cache_is_ready(source, data):
        assert source.cache is not None
        labels = CacheInfo.read(Path(source.cache) / INFO_FILE).attribute_schema()
    else:
        labels = source.dataset().load().schema
    return taught_schema(labels, source)


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
    """Loaders of :class:`FaceBatch` for a model's ``attributes`` and input size, from the
    sources of ``data`` (``data.source_list()``)."""

    def __init__(
        self, data: DataConfig, attributes: Sequence[str], out_size: Size, seed: int = 0
    ) -> None:
        super().__init__()
        self.data = data
        self.sources = data.source_list()
        self.attributes = tuple(attributes)
        height, width = (out_size, out_size) if isinstance(out_size, int) else out_size
        self.crop = CropSpec(data.crop, (height, width), data.box_scale, data.canonical_landmarks)
        self.seed = seed
        warn_if_upsampled(self.crop, data)
        self.splits: dict[str, FaceSplit] = {}
        """Each split of every source, pooled (:func:`pool`)."""
        self.source_splits: dict[str, list[FaceSplit]] = {}
        """Each split, source by source."""
        self._opened: dict[int, PackedCache | FaceDataset] = {}

    def prepare_data(self) -> None:
        """Write the packed caches configured and not ready (one process does this)."""
        for source in self.sources:
            if source.cache is None or cache_is_ready(source, self.data):
                continue
            prepare_cache(
                source.dataset(),
                source.cache,
                size=self.data.cache_size,
                margin=self.data.cache_margin,
                workers=self.data.workers,
            )

    def open_source(self, index: int = 0) -> PackedCache | FaceDataset:
        """Source ``index``'s packed cache, or its dataset loaded (and validated) once."""
        if index not in self._opened:
            source = self.sources[index]
            self._opened[index] = (
                PackedCache(source.cache) if source.cache is not None else source.dataset().load()
            )
        return self._opened[index]

    def load_decoded(self) -> None:
        """Load the sources read from their JPEGs now (their errors then stop a run before
        Lightning starts)."""
        for index, source in enumerate(self.sources):
            if source.cache is None:
                self.open_source(index)

    def setup(self, stage: str | None = None) -> None:
        """Open the caches (or the annotations) and plan the training and validation splits."""
        limits = {"train": self.data.limit_train, self.data.val_split: self.data.limit_val}
        for split, limit in limits.items():
            if split not in self.splits:
                self.source_splits[split] = self._parts(split, limit)
                self.splits[split] = pool(self.source_splits[split])

    def split(self, name: str, limit: int | None = None) -> FaceSplit:
        """The images of split ``name`` of every source (a seeded subset of ``limit`` of
        each)."""
        return pool(self._parts(name, limit))

    def _parts(self, name: str, limit: int | None) -> list[FaceSplit]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        columns = [self._columns(i) for i in range(len(self.sources))]
        untaught = [a for k, a in enumerate(self.attributes) if all(c[k] < 0 for c in columns)]
        if untaught:
            names = ", ".join(s.label() for s in self.sources)
            raise KeyError(f"no source ({names}) teaches attribute {untaught[0]!r}")
        idle = [s.label() for s, c in zip(self.sources, columns, strict=True) if (c < 0).all()]
        if idle:
            raise KeyError(f"source {idle[0]} teaches none of {', '.join(self.attributes)}")
        parts = []
        for index, source in enumerate(self.open_source(i) for i in range(len(self.sources))):
            rows = subset(self._rows(source, name), limit, self.seed)
            dataset: Dataset[FaceBatch]
            if isinstance(source, PackedCache):
                dataset, positions = self._cached(source, rows, columns[index], name)
            else:
                dataset, positions = self._decoded(source, rows, columns[index], name)
            labels = take_labels(source.labels[rows], columns[index])
            source_of = np.full(len(rows), index)
            parts.append(FaceSplit(dataset, positions, labels, source_of, source.image_ids[rows]))
        return parts

    def _columns(self, index: int) -> np.ndarray:
        """The model's columns among source ``index``'s taught attributes (-1: not taught); a
        lone source must teach them all."""
        source = self.open_source(index)
        schema = (
            source.info.attribute_schema() if isinstance(source, PackedCache) else source.schema
        )
        taught = taught_schema(schema, self.sources[index]).names
        columns = label_columns(self.attributes, schema.names, taught)
        if len(self.sources) == 1 and (columns < 0).any():
            where = source.path if isinstance(source, PackedCache) else source.root
            missing = self.attributes[int(np.flatnonzero(columns < 0)[0])]
            raise KeyError(f"{where} has no attribute {missing!r}")
        return columns

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

    def _cached(
        self, cache: PackedCache, rows: np.ndarray, columns: np.ndarray, name: str
    ) -> tuple[CachedFaces, np.ndarray]:
        if not len(rows):
            raise ValueError(f"{cache.path}: no {name} images in the cache")
        if self.crop.kind == "image" and cache.info.image_set != "align":
            raise ValueError("crop 'image' from a cache needs the aligned image set (known size)")
        to_cache = cache.matrices[rows]
        landmarks = to_source(to_cache, cache.landmarks[rows])
        boxes = corners_to_boxes(to_source(to_cache, cache.boxes[rows]))
        self.crop.check(landmarks, boxes, cache.image_ids[rows])
        sizes = np.tile(np.asarray(ALIGNED_IMAGE_SIZE, np.float64), (len(rows), 1))
        crops = np.full((len(cache), 2, 3), np.nan)
        crops[rows] = loose_to_crop_matrices(self.crop.matrices(landmarks, boxes, sizes), to_cache)
        return CachedFaces(cache, columns, crops), rows

    def _decoded(
        self, celeba: FaceDataset, rows: np.ndarray, columns: np.ndarray, name: str
    ) -> tuple[DecodedFaces, np.ndarray]:
        if not len(rows):
            raise ValueError(f"{celeba.root}: no {name} images present")
        n = len(celeba)
        landmarks = celeba.landmarks if celeba.landmarks is not None else np.full((n, 5, 2), np.nan)
        boxes = celeba.boxes if celeba.boxes is not None else np.full((n, 4), np.nan)
        landmarks, boxes = landmarks.astype(np.float64), boxes.astype(np.float64)
        self.crop.check(landmarks[rows], boxes[rows], celeba.image_ids[rows])
        images = FaceImageDataset(celeba, rows)
        dataset = DecodedFaces(
            images,
            columns,
            landmarks,
            boxes,
            self.crop,
            self.data.cache_size,
            self.data.cache_margin,
        )
        return dataset, np.arange(len(rows))

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
            source=split.source,
            weights=[source.weight for source in self.sources],
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

    def val_dataloader(self) -> DataLoader[FaceBatch] | list[DataLoader[FaceBatch]]:
        """Validation batches in file order: one loader, or one per source (in order) when
        there are several."""
        if len(self.sources) == 1:
            return self.loader(self.splits[self.data.val_split], train=False)
        return [self.loader(part, train=False) for part in self.source_splits[self.data.val_split]]

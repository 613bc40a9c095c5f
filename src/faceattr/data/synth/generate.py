"""``generate_dataset``: a complete synthetic CelebA folder (images and every annotation file).

Labels, identities and the partition are planned in one process from the seed; each image is then
drawn by a worker from its own stream ``SeedSequence(seed, spawn_key=(1, index))``, so the output
is byte-identical for any number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from faceattr.attributes import ATTRIBUTES
from faceattr.data.formats import (
    AttributeTable,
    BoxTable,
    IdentityTable,
    LandmarkTable,
    PartitionTable,
    write_attributes,
    write_boxes,
    write_identities,
    write_landmarks,
    write_partition,
)
from faceattr.data.synth.draw import apply
from faceattr.data.synth.label_stats import load_label_stats
from faceattr.data.synth.labels import (
    MINORITY_FLIP_RATE,
    add_label_noise,
    sample_identity_labels,
)
from faceattr.data.synth.render import (
    ALIGNED_SIZE,
    FaceTraits,
    render_face,
    resolve_labels,
    sample_traits,
)
from faceattr.data.synth.wild import place_in_wild

ALIGNED_DIR = "img_align_celeba"
WILD_DIR = "img_celeba"
TRUTH_FILE = "synth_truth_attr_celeba.txt"  # the drawn labels, before annotation noise
ALIGNED_BOX_FILE = "list_bbox_align_celeba.txt"  # not in CelebA; faceattr's data layer reads it
IMAGES_PER_IDENTITY = (5, 20)
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
_PLAN, _TRAITS, _IMAGE, _NOISE = range(4)  # independent random streams per seed


def _pool(workers: int) -> ProcessPoolExecutor:
    """Worker processes started fresh (never forked from a process that may hold thread locks,
    e.g. after torch was imported), each with single-threaded OpenCV."""
    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(workers, context, initializer=cv2.setNumThreads, initargs=(1,))


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True, eq=False)
class DatasetPlan:
    """Everything about a synthetic dataset except its pixels, one row per image in id order."""

    image_ids: np.ndarray  # "000001.jpg", ...
    identity: np.ndarray  # (N,) int32 identity numbers (1...)
    partition: np.ndarray  # (N,) int8: 0 train, 1 val, 2 test (identity-disjoint)
    truth: np.ndarray  # (N, 40) uint8: what is drawn
    labels: np.ndarray  # (N, 40) uint8: what the annotation file says (truth + noise)
    traits: tuple[FaceTraits, ...]  # per image (shared by the images of one identity)


def _identity_sizes(count: int, rng: np.random.Generator) -> np.ndarray:
    lo, hi = IMAGES_PER_IDENTITY
    sizes = rng.integers(lo, hi + 1, count // lo + 1)
    ends = np.cumsum(sizes)
    n = int(np.searchsorted(ends, count)) + 1
    sizes = sizes[:n].copy()
    sizes[-1] -= int(ends[n - 1]) - count
    return sizes


def _split_identities(sizes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Partition codes per identity, whole identities at a time, close to 80/10/10 of images."""
    order = rng.permutation(len(sizes))
    done = np.cumsum(sizes[order]) - sizes[order] / 2  # images before each identity's middle
    cuts = np.cumsum(SPLIT_FRACTIONS)[:2] * sizes.sum()
    split = np.empty(len(sizes), dtype=np.int8)
    split[order] = np.searchsorted(cuts, done)
    if len(sizes) >= 3:  # small datasets still get a val and a test identity
        for code, k in ((2, order[-1]), (1, order[-2])):
            if not (split == code).any():
                split[k] = code
    return split


def plan_dataset(
    count: int, seed: int = 0, minority_flip: float = MINORITY_FLIP_RATE
) -> DatasetPlan:
    """Identities (5-20 images each), an identity-disjoint ~80/10/10 partition, drawn labels and
    noisy annotations for ``count`` images, from ``seed`` alone.

    As in CelebA, image ids run through train, then val, then test, the identities of a split
    interleaved.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    rng = _rng(seed, _PLAN)
    sizes = _identity_sizes(count, rng)
    owner = np.repeat(np.arange(len(sizes)), sizes)
    truth = resolve_labels(sample_identity_labels(sizes, rng))
    split = _split_identities(sizes, rng)
    order = np.lexsort((rng.random(count), split[owner]))
    numbers = rng.permutation(len(sizes)).astype(np.int32) + 1

    traits_rng = _rng(seed, _TRAITS)
    first = np.cumsum(sizes) - sizes
    traits = [sample_traits(truth[i], traits_rng) for i in first]
    truth = truth[order]
    labels = add_label_noise(truth, load_label_stats().frequency, _rng(seed, _NOISE), minority_flip)
    return DatasetPlan(
        image_ids=np.array([f"{i:06d}.jpg" for i in range(1, count + 1)]),
        identity=numbers[owner[order]],
        partition=split[owner[order]],
        truth=truth,
        labels=labels,
        traits=tuple(traits[k] for k in owner[order]),
    )


@dataclass(frozen=True)
class _Task:
    index: int
    root: Path
    image_id: str
    labels: np.ndarray
    traits: FaceTraits
    seed: int


def _box(corners: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """x_1, y_1, width, height of the points' bounding box clipped to an image of ``size``."""
    top_left = np.clip(corners.min(axis=0), 0, None)
    bottom_right = np.minimum(corners.max(axis=0), np.asarray(size) - 1)
    return np.concatenate([top_left, bottom_right - top_left])


def _draw_image(task: _Task) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw, place and save one image pair: aligned and wild landmarks, aligned and wild boxes."""
    rng = _rng(task.seed, _IMAGE, task.index)
    face = render_face(task.labels, task.traits, rng)
    wild = place_in_wild(face, rng)
    face.image.save(task.root / ALIGNED_DIR / task.image_id, quality=int(rng.integers(80, 97)))
    wild.image.save(task.root / WILD_DIR / task.image_id, quality=int(rng.integers(75, 96)))
    wild_box = _box(apply(wild.matrix, face.face_corners), wild.image.size)
    return face.landmarks, wild.landmarks, _box(face.face_corners, face.image.size), wild_box


def _draw_small(args: tuple[np.ndarray, int, int, tuple[int, int]]) -> np.ndarray:
    labels, seed, index, size = args
    rng = _rng(seed, _IMAGE, index)
    face = render_face(labels, sample_traits(labels, rng), rng)
    return np.asarray(face.image.resize(size, Image.Resampling.BOX))


def render_array(
    labels: np.ndarray,
    seed: int = 0,
    size: tuple[int, int] = ALIGNED_SIZE,
    workers: int | None = None,
) -> np.ndarray:
    """Aligned faces for ``labels`` (N, 40; consistent, see :func:`resolve_labels`), each row a new
    identity, box-downsampled to ``size`` (width, height): (N, height, width, 3) uint8, no files.

    For quick experiments (learnability checks, demos); deterministic for any ``workers`` (which
    start fresh, as in :func:`generate_dataset`).
    """
    tasks = [(row, seed, i, size) for i, row in enumerate(np.asarray(labels, dtype=np.uint8))]
    workers = os.cpu_count() or 1 if workers is None else max(1, workers)
    if workers == 1:
        return np.stack([_draw_small(t) for t in tasks])
    with _pool(workers) as pool:
        return np.stack(list(pool.map(_draw_small, tasks, chunksize=32)))


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate_dataset` wrote."""

    root: Path
    images: int
    identities: int
    split_counts: tuple[int, int, int]  # train, val, test images
    label_noise: float  # fraction of written labels that differ from the drawn ones
    seconds: float
    workers: int

    @property
    def images_per_second(self) -> float:
        """Image pairs (aligned + wild) written per second."""
        return self.images / max(self.seconds, 1e-9)


def generate_dataset(
    out: str | Path,
    count: int,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> SynthSummary:
    """Write ``count`` synthetic faces as a CelebA folder at ``out``.

    ``img_align_celeba/`` (178x218 aligned crops) and ``img_celeba/`` (the same faces on cluttered
    canvases) plus ``list_attr_celeba.txt`` (noisy labels), ``list_eval_partition.txt``,
    ``identity_CelebA.txt``, ``list_landmarks_align_celeba.txt``, ``list_landmarks_celeba.txt``,
    ``list_bbox_celeba.txt`` in the official layout (whole-pixel coordinates; boxes span ears,
    skull top and chin), :data:`ALIGNED_BOX_FILE` (the same box in the aligned crops) and
    :data:`TRUTH_FILE` with the noise-free labels. ``workers``: processes (default: all CPUs; 0 or
    1 draws in this process); the files are identical for any value. ``out`` must be new or empty.
    Workers start fresh (forkserver), so a script calling this needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    start = time.perf_counter()
    root = Path(out)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty: write a synthetic dataset to a new folder")
    plan = plan_dataset(count, seed)
    for sub in (ALIGNED_DIR, WILD_DIR):
        (root / sub).mkdir(parents=True, exist_ok=True)
    tasks = [
        _Task(i, root, str(plan.image_ids[i]), plan.truth[i], plan.traits[i], seed)
        for i in range(count)
    ]
    workers = os.cpu_count() or 1 if workers is None else max(1, workers)
    bar = tqdm(total=count, desc="synth", unit="img", disable=not progress)
    if workers == 1:
        results = []
        for task in tasks:
            results.append(_draw_image(task))
            bar.update()
    else:
        with _pool(workers) as pool:
            results = []
            for result in pool.map(
                _draw_image, tasks, chunksize=max(1, min(64, count // (8 * workers)))
            ):
                results.append(result)
                bar.update()
    bar.close()
    aligned, wild, aligned_boxes, wild_boxes = (
        np.round(np.stack(column)) for column in zip(*results, strict=True)
    )

    ids = plan.image_ids
    write_attributes(root / "list_attr_celeba.txt", AttributeTable(ids, ATTRIBUTES, plan.labels))
    write_attributes(root / TRUTH_FILE, AttributeTable(ids, ATTRIBUTES, plan.truth))
    write_partition(root / "list_eval_partition.txt", PartitionTable(ids, plan.partition))
    write_identities(root / "identity_CelebA.txt", IdentityTable(ids, plan.identity))
    write_landmarks(root / "list_landmarks_align_celeba.txt", LandmarkTable(ids, aligned))
    write_landmarks(root / "list_landmarks_celeba.txt", LandmarkTable(ids, wild))
    write_boxes(root / "list_bbox_celeba.txt", BoxTable(ids, wild_boxes))
    write_boxes(root / ALIGNED_BOX_FILE, BoxTable(ids, aligned_boxes))
    return SynthSummary(
        root=root,
        images=count,
        identities=len(np.unique(plan.identity)),
        split_counts=tuple(int((plan.partition == k).sum()) for k in range(3)),  # type: ignore[arg-type]
        label_noise=float((plan.labels != plan.truth).mean()),
        seconds=time.perf_counter() - start,
        workers=workers,
    )

"""Pieces every loader uses: finding annotation files, joining tables onto image ids, collecting
file errors, and generating (seeded, saved) partitions for datasets that ship none."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd

from faceattr.data.check import CheckReport
from faceattr.data.formats import (
    SPLIT_CODES,
    AnnotationError,
    BoxTable,
    LandmarkTable,
    PartitionTable,
    read_boxes,
    read_landmarks,
    read_partition,
    write_partition,
)
from faceattr.data.record import DETECTED_STEMS, ImageSet, annotation_cache_dir

log = logging.getLogger(__name__)
T = TypeVar("T")
SUBFOLDERS = ("", "Anno", "Eval")  # CelebA's official download keeps annotations there


@dataclass(frozen=True)
class LoadOptions:
    """What a loader may be told beyond the root: CelebA's image set, more folders to look for
    annotation files in, and the seed of a generated partition."""

    image_set: ImageSet = "align"
    annotation_dirs: tuple[Path, ...] = ()
    split_seed: int = 0


@dataclass
class Collector:
    """Where a loader puts what it finds: errors raise at once (``collect`` False, when a job
    loads the data) or are listed (``faceattr data check``)."""

    report: CheckReport
    collect: bool = False
    files: dict[str, Path] = field(default_factory=dict)

    def attempt(
        self, kind: str, path: Path | None, reader: Callable[[Path], T], stem: str = ""
    ) -> T | None:
        """``reader(path)``, recording ``path`` as the ``kind`` file; None when ``path`` is None
        (the report names ``stem``, what was looked for) or (when collecting) the file is
        malformed."""
        if path is None:
            looked = f" ({stem}.txt or .csv)" if stem else ""
            self.report.files.setdefault(kind, f"not found{looked}")
            return None
        self.files[kind] = path
        self.report.files[kind] = f"{path} ({'CSV' if path.suffix.lower() == '.csv' else 'text'})"
        try:
            return reader(path)
        except (AnnotationError, ValueError) as exc:
            if not self.collect:
                raise
            self.report.errors.append(str(exc))
            return None

    def error(self, message: str) -> None:
        """An error: raised as ``AnnotationError``-free ``ValueError`` unless collecting."""
        if not self.collect:
            raise ValueError(message)
        self.report.errors.append(message)


def search_dirs(root: Path, annotation_dirs: Sequence[str | Path]) -> list[Path]:
    """Where annotation files are looked up: root (and ``Anno/``, ``Eval/``), then
    ``annotation_dirs``, then the annotation cache of root."""
    dirs = [root / sub for sub in SUBFOLDERS]
    return [*dirs, *(Path(d) for d in annotation_dirs), annotation_cache_dir(root)]


def find_annotation(
    root: str | Path, stem: str, annotation_dirs: Sequence[str | Path] = ()
) -> Path | None:
    """The first ``<stem>.txt`` or ``.csv`` in :func:`search_dirs`."""
    for directory in search_dirs(Path(root), annotation_dirs):
        for suffix in (".txt", ".csv"):
            if (directory / f"{stem}{suffix}").is_file():
                return directory / f"{stem}{suffix}"
    return None


def isin(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Boolean mask of ``values`` found in ``pool`` (a hash join, not a sort)."""
    if np.array_equal(values, pool):
        return np.ones(len(values), dtype=bool)
    return np.asarray(pd.Index(values).isin(pool), dtype=bool)


def aligned(ids: np.ndarray, table_ids: np.ndarray, values: np.ndarray, fill: float) -> np.ndarray:
    """``values`` reordered onto ``ids`` (vectorised join); rows the table lacks get ``fill``."""
    if np.array_equal(ids, table_ids):
        return values
    where = pd.Index(table_ids).get_indexer(ids)
    out = np.full((len(ids), *values.shape[1:]), fill, dtype=values.dtype)
    found = where >= 0
    out[found] = values[where[found]]
    return out


def read_geometry(
    collector: Collector,
    root: Path,
    stems: tuple[str, str],
    annotation_dirs: Sequence[str | Path],
) -> tuple[LandmarkTable | None, BoxTable | None]:
    """The landmark and box files named ``stems`` (a dataset's own, or a detector's output from
    ``faceattr data landmarks``); None where there is no file."""
    lm = collector.attempt(
        "landmarks", find_annotation(root, stems[0], annotation_dirs), read_landmarks, stems[0]
    )
    bx = collector.attempt(
        "boxes", find_annotation(root, stems[1], annotation_dirs), read_boxes, stems[1]
    )
    return lm, bx


def aligned_geometry(
    ids: np.ndarray, landmarks: LandmarkTable | None, boxes: BoxTable | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Landmarks ``(N, 5, 2)`` and boxes ``(N, 4)`` joined onto ``ids`` (NaN: no row)."""
    return (
        None
        if landmarks is None
        else aligned(ids, landmarks.image_ids, landmarks.landmarks, np.nan),
        None if boxes is None else aligned(ids, boxes.image_ids, boxes.boxes, np.nan),
    )


def detected_geometry(
    collector: Collector, root: Path, ids: np.ndarray, annotation_dirs: Sequence[str | Path]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Landmarks and boxes from the detector's files (:data:`DETECTED_STEMS`, ``faceattr data
    landmarks``) joined onto ``ids``; None where there is no file."""
    lm, bx = read_geometry(collector, root, DETECTED_STEMS, annotation_dirs)
    return aligned_geometry(ids, lm, bx)


def generated_partition(
    root: Path,
    name: str,
    ids: np.ndarray,
    identity: np.ndarray | None,
    shares: tuple[float, float, float],
    seed: int,
) -> tuple[np.ndarray, str]:
    """A train/val/test partition of ``ids`` in the proportions ``shares``: whole identities go
    to one split when ``identity`` is known, else single images; seeded, saved as
    ``<name>_partition_seed<seed>.txt`` (CelebA's partition format) in root's annotation cache,
    and read back from there when it is already saved for the same ids. Returns the partition
    and a sentence saying how it was drawn and where it is."""
    kind = "identity-disjoint" if identity is not None else "random"
    path = annotation_cache_dir(root) / f"{name}_partition_seed{seed}.txt"
    if path.is_file():
        saved = read_partition(path)
        if len(saved) == len(ids) and isin(ids, saved.image_ids).all():
            partition = aligned(ids, saved.image_ids, saved.partition, -1)
            return partition, f"generated {kind}, seed {seed}, read from {path}"
    rng = np.random.default_rng(seed)
    groups = identity if identity is not None else np.arange(len(ids))
    unique, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    order = rng.permutation(len(unique))
    cumulative = np.cumsum(counts[order]) / len(ids)
    train_end, val_end = shares[0], shares[0] + shares[1]
    group_split = np.empty(len(unique), dtype=np.int8)
    group_split[order] = np.where(
        cumulative <= train_end + 1e-9,
        SPLIT_CODES["train"],
        np.where(cumulative <= val_end + 1e-9, SPLIT_CODES["val"], SPLIT_CODES["test"]),
    )
    partition = group_split[inverse]
    try:
        write_partition(path, PartitionTable(ids, partition))
        where = f"saved to {path}"
    except (OSError, ValueError) as exc:  # ids a partition file cannot hold, a read-only cache
        where = f"not saved ({exc})"
    counts_text = ", ".join(f"{s} {int((partition == c).sum()):,}" for s, c in SPLIT_CODES.items())
    sentence = f"generated {kind}, seed {seed} ({counts_text}), {where}"
    log.info("%s: partition %s", root, sentence)
    return partition, sentence

"""Write the packed image cache (``faceattr data prepare``): decode once, crop loosely, memory-map.

Each present image is decoded once and warped (one bilinear resampling) into a square ``S x S``
loose face crop: the AFFACT box of its landmarks enlarged ``margin`` times and rotated upright;
without landmarks, the detector/dataset box enlarged ``2 * margin`` times (seed 003: a detector box
x2 is about the AFFACT box); without either, the whole image. The source -> cache matrix of every
row is stored, and landmarks and boxes are mapped through it, so they stay exact in cache pixels.

The run is resumable: rows are marked done in ``status.npy`` (rewritten atomically every few
seconds, only ever naming rows whose pixels are already in the memory-mapped file), so a re-run
with the same arguments continues where an interrupted one stopped and ends with the same bytes as
an uninterrupted run. Images that cannot be
decoded are skipped, listed in ``skipped.tsv`` (appended as they happen, sorted at the end) and
counted in the summary.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceattr.data.cache import (
    CROP_SOURCES,
    INFO_FILE,
    PENDING,
    SKIPPED,
    SKIPPED_FILE,
    WRITTEN,
    CacheInfo,
)
from faceattr.data.cache_writer import (
    RowFailure,
    SourceImage,
    create_array,
    render_rows,
    warp_to_uint8,
)
from faceattr.data.loaders import DatasetSource
from faceattr.data.record import FaceDataset
from faceattr.defaults import DEFAULT_MARGIN, DEFAULT_SIZE
from faceattr.geometry import affact_alignment_matrix, box_matrix, transform_points
from faceattr.geometry.affine import similarity_matrix

BOX_TO_AFFACT = 2.0
"""A detector box scaled by 2 is about the AFFACT box (seed 003, section 2.2.2)."""
FLUSH_SECONDS = 2.0


@dataclass(frozen=True)
class PrepareSummary:
    """What a ``prepare_cache`` run did."""

    out: Path
    count: int
    """Rows in the cache (present images of the chosen splits)."""
    written: int
    """Rows written by this run."""
    already_done: int
    """Rows found done by an earlier, interrupted run."""
    skipped: tuple[tuple[str, str], ...]
    """``(image_id, reason)`` of every image that could not be decoded (all runs)."""
    crop_sources: dict[str, int]
    seconds: float

    @property
    def images_per_second(self) -> float:
        """Rows written (or skipped) by this run per second of wall time."""
        return (self.written + len(self.skipped)) / self.seconds if self.seconds > 0 else 0.0


def loose_crop_matrices(
    landmarks: np.ndarray,
    boxes: np.ndarray,
    image_sizes: np.ndarray,
    size: int,
    margin: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Source -> cache matrices ``(N, 2, 3)`` and crop sources ``(N,)`` int8 (``CROP_SOURCES``).

    ``landmarks`` ``(N, 5, 2)`` and ``boxes`` ``(N, 4)`` (x, y, width, height) hold NaN where
    unknown; ``image_sizes`` is ``(N, 2)`` as (width, height). Each row uses the first of: the
    AFFACT box of its landmarks enlarged ``margin`` times (upright), its box enlarged
    ``BOX_TO_AFFACT * margin`` times, or the whole image fitted into the square.
    """
    if margin <= 0:
        raise ValueError(f"margin must be positive, got {margin}")
    n = len(image_sizes)
    matrices = np.empty((n, 2, 3))
    sources = np.full(n, CROP_SOURCES.index("whole_image"), dtype=np.int8)
    by_landmarks = np.isfinite(landmarks).all(axis=(1, 2))
    by_box = ~by_landmarks & np.isfinite(boxes).all(axis=1) & (boxes[:, 2:] > 0).all(axis=1)
    whole = ~by_landmarks & ~by_box
    if by_landmarks.any():
        aligned = affact_alignment_matrix(landmarks[by_landmarks], size)
        matrices[by_landmarks] = _zoom_out(aligned, size, margin)
        sources[by_landmarks] = CROP_SOURCES.index("landmarks")
    if by_box.any():
        matrices[by_box] = box_matrix(boxes[by_box], size, scale=BOX_TO_AFFACT * margin)
        sources[by_box] = CROP_SOURCES.index("box")
    if whole.any():
        wh = np.asarray(image_sizes[whole], dtype=np.float64)
        centre = (wh - 1.0) / 2.0
        scale = size / wh.max(axis=1)
        matrices[whole] = similarity_matrix(centre, scale, np.zeros(len(wh)), size)
    return matrices, sources


def _zoom_out(matrices: np.ndarray, size: int, margin: float) -> np.ndarray:
    """Shrink crops by ``margin`` about the crop centre, so ``margin`` times more source shows."""
    centre = (size - 1) / 2.0
    zoomed = matrices / margin
    zoomed[:, :, 2] += centre * (1.0 - 1.0 / margin)
    return zoomed


def box_corners(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4, 2)`` corners (top-left, top-right, bottom-right, bottom-left) of x/y/w/h boxes."""
    x, y, w, h = (boxes[:, k] for k in range(4))
    return np.stack([np.stack(c, -1) for c in ((x, y), (x + w, y), (x + w, y + h), (x, y + h))], 1)


@dataclass(frozen=True)
class LooseCropRenderer:
    """Renders one decoded image into its cache row (picklable, for worker processes)."""

    size: int
    margin: float

    def __call__(self, image: np.ndarray, source: SourceImage) -> dict[str, np.ndarray]:
        height, width = image.shape[:2]
        matrices, sources = loose_crop_matrices(
            source.landmarks[None],
            source.box[None],
            np.array([[width, height]]),
            self.size,
            self.margin,
        )
        return {
            "images": warp_to_uint8(image, matrices, self.size)[0],
            "matrices": matrices[0],
            "crop_source": sources[0],
        }


def prepare_cache(
    source: str | Path | DatasetSource,
    out: str | Path,
    *,
    size: int = DEFAULT_SIZE,
    margin: float = DEFAULT_MARGIN,
    splits: Sequence[str] = (),
    workers: int = 0,
    chunk_size: int = 64,
    progress: bool = True,
) -> PrepareSummary:
    """Write (or finish) the packed cache of the present images of ``source`` (a dataset root,
    its format detected, or a :class:`DatasetSource`) in ``out``.

    ``splits`` limits it to some of "train", "val", "test" (empty: every present image);
    ``workers`` decoding processes (0: this process). Raises ``ValueError`` when ``out`` holds a
    cache prepared with other arguments.
    """
    started = time.perf_counter()
    source, out = DatasetSource.of(source), Path(out)
    data = source.load()
    rows = data.split_indices(list(splits) or "all")  # present images only
    info = CacheInfo(
        size=size,
        margin=float(margin),
        image_set=data.image_set,
        count=len(rows),
        source_root=str(source.root.resolve()),
        dataset_format=data.format,
        splits=tuple(splits),
        attribute_names=tuple(data.attribute_names),
        schema=data.schema.to_json(),
        complete=False,
    )
    out.mkdir(parents=True, exist_ok=True)
    if (out / INFO_FILE).exists():
        _check_same_plan(out, info, data.image_ids[rows])
    else:
        _start(out, info, data, rows)
    status = np.load(out / "status.npy")
    already_done = int((status != PENDING).sum())
    pending = np.flatnonzero(status == PENDING)
    progress_state = _Progress(out, status)
    try:
        render_rows(
            [_source(data, rows, int(r)) for r in pending],
            LooseCropRenderer(size, float(margin)),
            {name: out / f"{name}.npy" for name in ("images", "matrices", "crop_source")},
            workers=workers,
            on_chunk=progress_state.record,
            chunk_size=chunk_size,
            desc=f"prepare {out.name}",
            progress=progress,
        )
    finally:
        progress_state.flush()
    done, skipped = _finish(out, info, data, rows, status)
    return PrepareSummary(
        out=out,
        count=len(rows),
        written=progress_state.written,
        already_done=already_done,
        skipped=skipped,
        crop_sources=done.crop_sources,
        seconds=time.perf_counter() - started,
    )


def _source(data: FaceDataset, rows: np.ndarray, row: int) -> SourceImage:
    i = int(rows[row])
    nan_points, nan_box = np.full((5, 2), np.nan), np.full(4, np.nan)
    return SourceImage(
        row=int(row),
        image_id=str(data.image_ids[i]),
        path=str(data.image_path(i)),
        landmarks=nan_points if data.landmarks is None else data.landmarks[i].astype(np.float64),
        box=nan_box if data.boxes is None else data.boxes[i].astype(np.float64),
    )


def _start(out: Path, info: CacheInfo, data: FaceDataset, rows: np.ndarray) -> None:
    """Write the static arrays and the empty working arrays of a new cache."""
    n = len(rows)
    partition = np.full(n, -1, np.int8) if data.partition is None else data.partition[rows]
    identity = np.full(n, -1, np.int32) if data.identity is None else data.identity[rows]
    np.save(out / "image_ids.npy", np.asarray(data.image_ids[rows], dtype=str))
    np.save(out / "labels.npy", np.asarray(data.labels[rows], dtype=np.float32))
    np.save(out / "partition.npy", np.asarray(partition, dtype=np.int8))
    np.save(out / "identity.npy", np.asarray(identity, dtype=np.int32))
    create_array(out / "images.npy", n, (info.size, info.size, 3), np.dtype(np.uint8))
    create_array(out / "matrices.npy", n, (2, 3), np.dtype(np.float64))
    create_array(out / "crop_source.npy", n, (), np.dtype(np.int8))
    np.save(out / "status.npy", np.zeros(n, np.uint8))
    (out / SKIPPED_FILE).write_text("")
    (out / INFO_FILE).write_text(info.to_json())


def _check_same_plan(out: Path, info: CacheInfo, image_ids: np.ndarray) -> None:
    existing = CacheInfo.read(out / INFO_FILE)
    keys = ("size", "margin", "image_set", "count", "source_root", "splits")
    differ = [k for k in keys if getattr(existing, k) != getattr(info, k)]
    if not differ and not np.array_equal(np.load(out / "image_ids.npy"), image_ids):
        differ = ["image ids"]
    if differ:
        detail = ", ".join(
            f"{k}: {getattr(existing, k, '...')} -> {getattr(info, k, '...')}" for k in differ
        )
        raise ValueError(
            f"{out} holds a cache prepared with other arguments ({detail}); choose another --out "
            "or delete it"
        )


class _Progress:
    """Marks rows done in memory and rewrites ``status.npy`` atomically every few seconds."""

    def __init__(self, out: Path, status: np.ndarray) -> None:
        self.out = out
        self.status = status
        self.written = 0
        self.failures: list[RowFailure] = []
        self.last_flush = time.monotonic()

    def record(self, written: Sequence[int], failures: Sequence[RowFailure]) -> None:
        self.status[list(written)] = WRITTEN
        self.status[[f.row for f in failures]] = SKIPPED
        self.written += len(written)
        self.failures.extend(failures)
        if time.monotonic() - self.last_flush > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        with (self.out / SKIPPED_FILE).open("a") as log:  # before the status that relies on it
            log.writelines(f"{f.row}\t{f.image_id}\t{f.reason}\n" for f in self.failures)
        self.failures = []
        temporary = self.out / "status.npy.tmp"
        with temporary.open("wb") as file:
            np.save(file, self.status)
        os.replace(temporary, self.out / "status.npy")
        self.last_flush = time.monotonic()


def _finish(
    out: Path, info: CacheInfo, data: FaceDataset, rows: np.ndarray, status: np.ndarray
) -> tuple[CacheInfo, tuple[tuple[str, str], ...]]:
    """Map landmarks and boxes into cache pixels, list the skipped images, mark the cache done."""
    if (status == PENDING).any():
        raise RuntimeError(f"{out}: {(status == PENDING).sum()} rows are still pending")
    matrices = np.load(out / "matrices.npy")
    n = len(rows)
    landmarks = np.full((n, 5, 2), np.nan)
    boxes = np.full((n, 4, 2), np.nan)
    ok = status == WRITTEN
    if data.landmarks is not None and ok.any():
        landmarks[ok] = transform_points(matrices[ok], data.landmarks[rows[ok]].astype(np.float64))
    if data.boxes is not None and ok.any():
        corners = box_corners(data.boxes[rows[ok]].astype(np.float64))
        boxes[ok] = transform_points(matrices[ok], corners)
    np.save(out / "landmarks.npy", landmarks.astype(np.float32))
    np.save(out / "boxes.npy", boxes.astype(np.float32))
    reasons: dict[int, tuple[str, str]] = {}  # an interrupted run may have logged a row twice
    for line in (out / SKIPPED_FILE).read_text().splitlines():
        row, image_id, reason = line.split("\t", 2)
        reasons[int(row)] = (image_id, reason)
    skipped_rows = np.flatnonzero(status == SKIPPED)
    skipped = tuple(reasons[int(r)] for r in skipped_rows)
    lines = (f"{r}\t{i}\t{why}\n" for r, (i, why) in zip(skipped_rows, skipped, strict=True))
    (out / SKIPPED_FILE).write_text("".join(lines))
    crop_source = np.load(out / "crop_source.npy")[ok]
    done = CacheInfo(
        **{
            **info.__dict__,
            "complete": True,
            "crop_sources": {k: int((crop_source == i).sum()) for i, k in enumerate(CROP_SOURCES)},
            "skipped": len(skipped),
        }
    )
    (out / INFO_FILE).write_text(done.to_json())
    return done, skipped

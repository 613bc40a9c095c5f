"""Landmark and box files for a dataset that lacks them, from a face detector.

`detect_landmarks` runs a registered detector over the PRESENT images of a dataset and writes the
landmark and box files its loader reads (``FaceDataset.geometry_stems``): for CelebA
``list_landmarks_align_celeba.txt`` + ``list_bbox_align_celeba.txt`` (``align``; the box file's
name is ours, its layout that of ``list_bbox_celeba.txt``) or ``list_landmarks_celeba.txt`` +
``list_bbox_celeba.txt`` (``wild``), for the other formats ``landmarks.txt`` + ``boxes.txt``; plus
a JSON summary. Where several faces are found, the main one is kept (`main_face`). Where none is
found, a fallback fills the row, in this order:

1. ``dataset_box``: the folder's own box file has a box for the image: the box is kept and the
   landmarks are placed in it by `BOX_LANDMARK_LAYOUT` (approximate: a detector-style box layout);
2. ``canonical``: aligned images get `MEAN_ALIGNED_LANDMARKS` and `MEAN_ALIGNED_BOX`
   (scaled when the images are not 178x218), which is where alignment put every face;
3. ``whole_image``: in-the-wild images without a box take the whole image as the box.

Unreadable images get no row and are listed in the summary. Work is flushed every ``flush_every``
images to a ``.partial.npz`` file beside the outputs, which a restart reuses.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from faceattr.data.formats import BoxTable, LandmarkTable, write_boxes, write_landmarks
from faceattr.data.loaders import DatasetSource
from faceattr.data.record import ImageSet, annotation_cache_dir
from faceattr.faces.detection import FaceDetector, create_detector, main_face
from faceattr.faces.images import ImageDecodeError, decode_image
from faceattr.geometry.frame import (
    ALIGNED_IMAGE_SIZE,
    MEAN_ALIGNED_BOX,
    MEAN_ALIGNED_LANDMARKS,
    landmarks_in_boxes,
    scale_to_image,
)

FALLBACKS = ("dataset_box", "canonical", "whole_image")
UNREADABLE = -1  # ``faces`` value of an image that could not be decoded


_COLUMNS = ("image_ids", "faces", "boxes", "landmarks", "scores", "sizes")


@dataclass(frozen=True, eq=False)
class FaceColumns:
    """The main face of each image, as columns.

    ``faces`` counts the faces found: 0 means none (``boxes``, ``landmarks`` and ``scores`` are then
    NaN) and `UNREADABLE` a file that did not decode. ``sizes`` is each image's (height, width).
    """

    image_ids: np.ndarray  # (N,) str
    faces: np.ndarray  # (N,) int16
    boxes: np.ndarray  # (N, 4) float32 x, y, width, height
    landmarks: np.ndarray  # (N, 5, 2) float32
    scores: np.ndarray  # (N,) float32
    sizes: np.ndarray  # (N, 2) int32 height, width

    def __len__(self) -> int:
        return len(self.image_ids)

    @staticmethod
    def allocate(image_ids: np.ndarray) -> FaceColumns:
        """Rows for ``image_ids`` with no face yet, to be filled in place."""
        n = len(image_ids)
        return FaceColumns(
            image_ids=np.asarray(image_ids, dtype=str),
            faces=np.zeros(n, np.int16),
            boxes=np.full((n, 4), np.nan, np.float32),
            landmarks=np.full((n, 5, 2), np.nan, np.float32),
            scores=np.full(n, np.nan, np.float32),
            sizes=np.zeros((n, 2), np.int32),
        )

    def head(self, n: int) -> FaceColumns:
        """The first ``n`` rows."""
        return FaceColumns(*(getattr(self, name)[:n] for name in _COLUMNS))

    @staticmethod
    def concatenate(first: FaceColumns, second: FaceColumns) -> FaceColumns:
        """The rows of ``first`` then those of ``second``."""
        return FaceColumns(
            *(np.concatenate([getattr(first, n), getattr(second, n)]) for n in _COLUMNS)
        )

    def save(self, path: Path, detector: str, image_set: str) -> None:
        """Write these rows atomically as ``.npz``, with what made them (checked by `load`)."""
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as f:
            np.savez(
                f,
                detector=detector,
                image_set=image_set,
                **{name: getattr(self, name) for name in _COLUMNS},
            )
        os.replace(tmp, path)

    @staticmethod
    def load(path: Path, detector: str, image_set: str) -> FaceColumns | None:
        """Rows saved by `save` with the same detector and image set; None otherwise."""
        if not path.is_file():
            return None
        with np.load(path) as saved:
            if str(saved["detector"]) != detector or str(saved["image_set"]) != image_set:
                return None
            return FaceColumns(*(saved[name] for name in _COLUMNS))


@dataclass(frozen=True)
class LandmarkSummary:
    """What `detect_landmarks` did; also written as JSON beside the landmark file."""

    root: str
    image_set: str
    detector: str
    landmarks_file: str
    boxes_file: str
    rows: int  # images written (the present, readable ones)
    found: int  # images where the detector found a face
    multiple_faces: int  # images where it found more than one (the main face was kept)
    fallbacks: dict[str, int]  # rows filled by each fallback, see the module docstring
    unreadable: list[str]  # present images that did not decode (not written)
    absent: int  # annotated images without an image file (not written)
    resumed: int  # rows reused from an interrupted run
    seconds: float
    images_per_second: float  # images detected in this run per second
    eye_distance_mean: float | None = None  # aligned only: px from the canonical eyes, found faces
    eye_distance_median: float | None = None

    @property
    def found_rate(self) -> float:
        """Fraction of the written rows where a face was found."""
        return self.found / self.rows if self.rows else 0.0

    def format(self) -> str:
        """A few human-readable lines."""
        fallbacks = ", ".join(f"{k} {v:,}" for k, v in self.fallbacks.items())
        lines = [
            f"{self.detector} on {self.rows:,} {self.image_set} images of {self.root}: "
            f"face found in {self.found:,} ({100 * self.found_rate:.2f}%), "
            f"several faces in {self.multiple_faces:,}",
            f"fallbacks: {fallbacks}",
            f"{self.seconds:.1f} s, {self.images_per_second:.1f} images/s"
            + (f" ({self.resumed:,} rows resumed)" if self.resumed else ""),
        ]
        if self.eye_distance_mean is not None:
            lines.append(
                f"eye landmarks vs canonical aligned positions: mean {self.eye_distance_mean:.2f} "
                f"px, median {self.eye_distance_median:.2f} px"
            )
        if self.absent:
            lines.append(f"{self.absent:,} annotated images are absent and were not written")
        if self.unreadable:
            lines.append(f"{len(self.unreadable):,} unreadable images were not written")
        lines += [f"wrote {self.landmarks_file}", f"wrote {self.boxes_file}"]
        return "\n".join(lines)


def eye_distances(landmarks: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(N, 2) distances in px of each image's two eyes from the canonical aligned eyes, those
    scaled to each image's size ``sizes`` (N, 2) (height, width)."""
    factor = np.asarray(sizes, np.float64)[:, ::-1] / np.array(ALIGNED_IMAGE_SIZE)
    canonical = MEAN_ALIGNED_LANDMARKS[:2] * factor[:, None, :]
    return np.linalg.norm(landmarks[:, :2] - canonical, axis=-1)


def fill_fallbacks(
    faces: FaceColumns, image_set: ImageSet, dataset_boxes: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Boxes (N, 4) and landmarks (N, 5, 2) for every row of ``faces``: the detected face, else a
    fallback (see the module docstring); and how many rows each fallback filled.

    ``dataset_boxes`` (N, 4), from the folder's box file, holds NaN where it has no box.
    """
    boxes, landmarks = faces.boxes.copy(), faces.landmarks.copy()
    missing = faces.faces == 0
    counts = dict.fromkeys(FALLBACKS, 0)
    if dataset_boxes is not None:
        use = missing & np.isfinite(dataset_boxes).all(axis=1)
        boxes[use] = dataset_boxes[use]
        landmarks[use] = landmarks_in_boxes(dataset_boxes[use])
        counts["dataset_box"] = int(use.sum())
        missing &= ~use
    for i in np.flatnonzero(missing):
        height, width = (int(v) for v in faces.sizes[i])
        if image_set == "align":
            boxes[i] = scale_to_image(MEAN_ALIGNED_BOX, (width, height))
            landmarks[i] = scale_to_image(MEAN_ALIGNED_LANDMARKS, (width, height))
            counts["canonical"] += 1
        else:
            boxes[i] = (0, 0, width, height)
            landmarks[i] = landmarks_in_boxes(boxes[i : i + 1])[0]
            counts["whole_image"] += 1
    return boxes, landmarks, counts


def default_output_dir(root: str | Path) -> Path:
    """``root`` when it is writable, else the data layer's `annotation_cache_dir` for it.

    A folder whose permission bits deny writing counts as read-only even for root (who could write
    there anyway), as a dataset shared read-only in a container is.
    """
    root = Path(root)
    writable = os.access(root, os.W_OK) and root.stat().st_mode & 0o222
    return root if writable else annotation_cache_dir(root)


def output_paths(out_dir: Path, stems: tuple[str, str]) -> tuple[Path, Path, Path, Path]:
    """The landmark, box, summary and partial-progress files of a dataset whose geometry files
    are named ``stems`` (``FaceDataset.geometry_stems``) in ``out_dir``."""
    landmarks, boxes = stems
    return (
        out_dir / f"{landmarks}.txt",
        out_dir / f"{boxes}.txt",
        out_dir / f"{landmarks}.summary.json",
        out_dir / f"{landmarks}.partial.npz",
    )


def written_by_detector(box_file: Path, stems: tuple[str, str]) -> bool:
    """Whether ``box_file`` was written by `detect_landmarks` (its summary lies beside it): its
    boxes are then no dataset boxes to fall back on."""
    return output_paths(box_file.parent, stems)[2].is_file()


# One detector per worker process (native models are not shared across processes or threads).
_worker_detector: FaceDetector | None = None

DetectedRow = tuple[int, np.ndarray, np.ndarray, float, tuple[int, int]]


def _start_worker(detector: str, threads: int) -> None:
    global _worker_detector
    if threads:
        cv2.setNumThreads(threads)
    _worker_detector = create_detector(detector)


def _detect_file(path: Path) -> DetectedRow:
    """(faces, box, landmarks, score, (height, width)) of the main face of the image at ``path``."""
    assert _worker_detector is not None, "call _start_worker first"
    no_box, no_landmarks = np.full(4, np.nan, np.float32), np.full((5, 2), np.nan, np.float32)
    try:
        rgb = decode_image(path)
    except ImageDecodeError:  # unreadable, or over the pixel budget
        return UNREADABLE, no_box, no_landmarks, np.nan, (0, 0)
    size = (rgb.shape[0], rgb.shape[1])
    detections = _worker_detector.detect(rgb)
    face = main_face(detections, size)
    if face is None:
        return 0, no_box, no_landmarks, np.nan, size
    return len(detections), np.array(face.box, np.float32), face.landmarks, face.score, size


def _detect_files(paths: Sequence[Path], detector: str, workers: int) -> Iterator[DetectedRow]:
    """`_detect_file` over ``paths``, in order: inline for one worker, else a process pool."""
    if workers <= 1:
        _start_worker(detector, threads=0)
        yield from map(_detect_file, paths)
        return
    context = multiprocessing.get_context("spawn")  # never fork a process holding OpenCV threads
    with context.Pool(workers, initializer=_start_worker, initargs=(detector, 1)) as pool:
        yield from pool.imap(_detect_file, paths, chunksize=16)


def detect_faces(
    paths: Sequence[Path],
    image_ids: np.ndarray,
    detector: str = "yunet",
    workers: int = 1,
    flush_every: int = 1000,
    flush: Callable[[FaceColumns], None] | None = None,
    progress: bool = True,
) -> FaceColumns:
    """The main face of each image of ``paths`` (named ``image_ids``), with a progress bar.

    ``flush(rows_so_far)`` is called every ``flush_every`` images, for resumable runs.
    """
    columns = FaceColumns.allocate(image_ids)
    results = _detect_files(paths, detector, workers)
    bar = tqdm(
        results, total=len(paths), desc=f"{detector} landmarks", unit="img", disable=not progress
    )
    for i, row in enumerate(bar):
        columns.faces[i], columns.boxes[i], columns.landmarks[i], columns.scores[i] = row[:4]
        columns.sizes[i] = row[4]
        if flush is not None and (i + 1) % flush_every == 0 and i + 1 < len(paths):
            flush(columns.head(i + 1))
    return columns


def _resume(path: Path, detector: str, image_set: str, image_ids: np.ndarray) -> FaceColumns:
    """The rows of an interrupted run saved at ``path`` when they are a prefix of ``image_ids``."""
    saved = FaceColumns.load(path, detector, image_set)
    if saved is None or not np.array_equal(saved.image_ids, image_ids[: len(saved)]):
        return FaceColumns.allocate(image_ids[:0])
    return saved


def _eye_statistics(faces: FaceColumns, image_set: str) -> tuple[float | None, float | None]:
    """Mean and median eye distance (px) from the canonical aligned eyes over the faces found."""
    found = faces.faces > 0
    if image_set != "align" or not found.any():
        return None, None
    distances = eye_distances(faces.landmarks[found], faces.sizes[found])
    return round(float(distances.mean()), 3), round(float(np.median(distances)), 3)


def detect_landmarks(
    source: str | Path | DatasetSource,
    out: str | Path | None = None,
    detector: str = "yunet",
    limit: int | None = None,
    workers: int = 1,
    flush_every: int = 1000,
    overwrite: bool = False,
    progress: bool = True,
) -> LandmarkSummary:
    """Detect the main face of every present image of ``source`` (a dataset root, its format
    detected, or a :class:`DatasetSource`) and write its landmark and box files (named by the
    dataset's ``geometry_stems``) into ``out`` (default: `default_output_dir`); see the module
    docstring.

    ``limit`` keeps the first N present images. Raises `FileExistsError` when the landmark file is
    already in ``out`` (unless ``overwrite``), so that official annotations are never replaced.
    """
    create_detector(detector)  # fail early on an unknown name or a missing model file
    source = DatasetSource.of(source)
    root = source.root
    data = source.load()
    image_set = data.image_set
    out_dir = Path(out) if out is not None else default_output_dir(root)
    landmark_path, box_path, summary_path, partial_path = output_paths(out_dir, data.geometry_stems)
    if landmark_path.exists() and not overwrite:
        raise FileExistsError(f"{landmark_path} exists; pass overwrite=True (--overwrite)")
    rows = np.flatnonzero(data.present)[:limit]
    image_ids = data.image_ids[rows]
    paths = [data.image_path(int(i)) for i in rows]

    out_dir.mkdir(parents=True, exist_ok=True)
    done = _resume(partial_path, detector, image_set, image_ids)

    def flush(rows_so_far: FaceColumns) -> None:
        FaceColumns.concatenate(done, rows_so_far).save(partial_path, detector, image_set)

    start = time.perf_counter()
    new = detect_faces(
        paths[len(done) :], image_ids[len(done) :], detector, workers, flush_every, flush, progress
    )
    seconds = time.perf_counter() - start
    faces = FaceColumns.concatenate(done, new)

    dataset_boxes = None
    if data.boxes is not None and not written_by_detector(data.files["boxes"], data.geometry_stems):
        dataset_boxes = data.boxes[rows]
    boxes, landmarks, fallbacks = fill_fallbacks(faces, image_set, dataset_boxes)
    readable = faces.faces != UNREADABLE
    kept = faces.image_ids[readable]
    write_landmarks(landmark_path, LandmarkTable(kept, np.round(landmarks[readable], 2)))
    write_boxes(box_path, BoxTable(kept, np.round(boxes[readable], 2)))

    eye_mean, eye_median = _eye_statistics(faces, image_set)
    summary = LandmarkSummary(
        root=str(root),
        image_set=image_set,
        detector=detector,
        landmarks_file=str(landmark_path),
        boxes_file=str(box_path),
        rows=int(readable.sum()),
        found=int((faces.faces > 0).sum()),
        multiple_faces=int((faces.faces > 1).sum()),
        fallbacks=fallbacks,
        unreadable=faces.image_ids[~readable].tolist(),
        absent=int((~data.present).sum()),
        resumed=len(done),
        seconds=round(seconds, 2),
        images_per_second=round(len(new) / seconds, 2) if seconds > 0 else 0.0,
        eye_distance_mean=eye_mean,
        eye_distance_median=eye_median,
    )
    summary_path.write_text(json.dumps(asdict(summary), indent=2) + "\n", encoding="utf-8")
    partial_path.unlink(missing_ok=True)
    return summary

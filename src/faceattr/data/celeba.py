"""A CelebA folder as aligned numpy columns: find its files, load them, and check them.

A root holds the images (``img_align_celeba/`` or ``img_celeba/``) and the annotation files, each as
the official ``.txt`` or Kaggle's ``.csv``, directly in the root or in the official ``Anno/`` and
``Eval/`` subfolders. Annotations derived later (landmarks or boxes from a detector) can live
beside a read-only root in :func:`annotation_cache_dir`. Every table is joined onto the ids of the
attribute file; a partial image folder loads the images present and counts the missing ones.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import pandas as pd
from tqdm import tqdm

from faceattr.attributes import ATTRIBUTES
from faceattr.data.formats import (
    SPLIT_CODES,
    AnnotationError,
    AttributeTable,
    BoxTable,
    IdentityTable,
    LandmarkTable,
    PartitionTable,
    read_attributes,
    read_boxes,
    read_identities,
    read_landmarks,
    read_partition,
)
from faceattr.image_files import open_image

log = logging.getLogger(__name__)

ImageSet = Literal["align", "wild"]
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class ImageSetFiles:
    """The image folder and the geometry files of one image set."""

    image_dir: str
    landmarks: str
    boxes: str


IMAGE_SETS: dict[str, ImageSetFiles] = {
    "align": ImageSetFiles(
        "img_align_celeba", "list_landmarks_align_celeba", "list_bbox_align_celeba"
    ),
    "wild": ImageSetFiles("img_celeba", "list_landmarks_celeba", "list_bbox_celeba"),
}
ATTRIBUTE_FILE = "list_attr_celeba"
PARTITION_FILE = "list_eval_partition"
IDENTITY_FILE = "identity_CelebA"
_SUBFOLDERS = ("", "Anno", "Eval")  # the official download keeps annotations in Anno/ and Eval/


def cache_home() -> Path:
    """faceattr's cache folder: ``$FACEATTR_CACHE``, default ``~/.cache/faceattr``."""
    return Path(os.environ.get("FACEATTR_CACHE", "~/.cache/faceattr")).expanduser()


def annotation_cache_dir(root: str | Path) -> Path:
    """Where annotations derived for ``root`` go: ``$FACEATTR_CACHE/annotations/<name>-<hash>``.

    ``$FACEATTR_CACHE`` defaults to ``~/.cache/faceattr``; the hash is the first 8 hex digits of the
    SHA-1 of the resolved root path, so two roots with the same name do not share annotations.
    """
    resolved = Path(root).resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    return cache_home() / "annotations" / f"{resolved.name}-{digest}"


def _search_dirs(root: Path, annotation_dirs: Sequence[str | Path]) -> list[Path]:
    dirs = [root / sub for sub in _SUBFOLDERS]
    return [*dirs, *(Path(d) for d in annotation_dirs), annotation_cache_dir(root)]


def find_annotation(
    root: str | Path, stem: str, annotation_dirs: Sequence[str | Path] = ()
) -> Path | None:
    """The first ``<stem>.txt`` or ``.csv`` in root, then ``annotation_dirs``, then the cache."""
    for directory in _search_dirs(Path(root), annotation_dirs):
        for suffix in (".txt", ".csv"):
            if (directory / f"{stem}{suffix}").is_file():
                return directory / f"{stem}{suffix}"
    return None


def find_image_dir(root: str | Path, image_set: ImageSet = "align") -> Path:
    """The image folder of ``image_set``: in root or ``Img/``, unwrapping Kaggle's nested copy."""
    name = IMAGE_SETS[image_set].image_dir
    root = Path(root)
    for candidate in (root / name, root / "Img" / name):
        if candidate.is_dir():
            nested = candidate / name  # Kaggle's zip holds img_align_celeba/img_align_celeba/
            return nested if nested.is_dir() else candidate
    return root / name


def _image_names(image_dir: Path) -> np.ndarray:
    if not image_dir.is_dir():
        return np.array([], dtype=str)
    with os.scandir(image_dir) as entries:
        return np.array([e.name for e in entries if e.is_file()], dtype=str)


@dataclass
class CelebA:
    """One CelebA image set, every table aligned to the attribute file's ids (row ``i`` everywhere).

    ``partition`` and ``identity`` hold -1 and ``landmarks``/``boxes`` NaN for ids their file lacks;
    a table is None when its file was not found. ``present`` marks the images on disk.
    """

    root: Path
    image_dir: Path
    image_ids: np.ndarray
    attribute_names: tuple[str, ...]
    labels: np.ndarray
    partition: np.ndarray | None
    identity: np.ndarray | None
    landmarks: np.ndarray | None
    boxes: np.ndarray | None
    present: np.ndarray
    files: dict[str, Path] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.image_ids)

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
            raise ValueError(f"{self.root}: no {PARTITION_FILE} file, so no {names[0]!r} split")
        codes = [SPLIT_CODES[s] for s in names]
        return np.flatnonzero(self.present & np.isin(self.partition, codes))

    def image_path(self, i: int) -> Path:
        """The image file of row ``i``."""
        return self.image_dir / str(self.image_ids[i])


def _isin(values: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Boolean mask of ``values`` found in ``pool`` (a hash join, not a sort)."""
    if np.array_equal(values, pool):  # the usual case: files listing the same ids in one order
        return np.ones(len(values), dtype=bool)
    return np.asarray(pd.Index(values).isin(pool), dtype=bool)


def _aligned(ids: np.ndarray, table_ids: np.ndarray, values: np.ndarray, fill: float) -> np.ndarray:
    """``values`` reordered onto ``ids`` (vectorised join); rows the table lacks get ``fill``."""
    if np.array_equal(ids, table_ids):
        return values
    where = pd.Index(table_ids).get_indexer(ids)
    out = np.full((len(ids), *values.shape[1:]), fill, dtype=values.dtype)
    found = where >= 0
    out[found] = values[where[found]]
    return out


def _canonical(table: AttributeTable, path: Path) -> AttributeTable:
    """The table with its columns in :data:`ATTRIBUTES` order; all 40 must be there."""
    if table.names == ATTRIBUTES:
        return table
    missing = [n for n in ATTRIBUTES if n not in table.names]
    if missing:
        line = 1 if path.suffix.lower() == ".csv" else 2
        raise AnnotationError(path, line, f"missing attributes: {', '.join(missing)}")
    order = [table.names.index(n) for n in ATTRIBUTES]
    return AttributeTable(table.image_ids, ATTRIBUTES, table.labels[:, order])


@dataclass
class _Tables:
    """The tables read from one root, and the files they came from."""

    files: dict[str, Path]
    attributes: AttributeTable
    partition: PartitionTable | None = None
    identity: IdentityTable | None = None
    landmarks: LandmarkTable | None = None
    boxes: BoxTable | None = None


def _file_stems(image_set: ImageSet) -> dict[str, str]:
    files = IMAGE_SETS[image_set]
    return {
        "attributes": ATTRIBUTE_FILE,
        "partition": PARTITION_FILE,
        "identity": IDENTITY_FILE,
        "landmarks": files.landmarks,
        "boxes": files.boxes,
    }


def _find_files(
    root: Path, image_set: ImageSet, annotation_dirs: Sequence[str | Path]
) -> dict[str, Path]:
    found = {
        k: find_annotation(root, s, annotation_dirs) for k, s in _file_stems(image_set).items()
    }
    return {k: p for k, p in found.items() if p is not None}


T = TypeVar("T")


def _read_tables(files: dict[str, Path], errors: list[str] | None = None) -> _Tables | None:
    """Read the files found; with ``errors``, collect malformed-file messages there, don't raise.

    Returns None when the attribute file is absent or malformed (only with ``errors``).
    """

    def attempt(kind: str, reader: Callable[[Path], T]) -> T | None:
        if kind not in files:
            return None
        try:
            return reader(files[kind])
        except AnnotationError as exc:
            if errors is None:
                raise
            errors.append(str(exc))
            return None

    attributes = attempt("attributes", lambda p: _canonical(read_attributes(p), p))
    if attributes is None:
        return None
    return _Tables(
        files,
        attributes,
        attempt("partition", read_partition),
        attempt("identity", read_identities),
        attempt("landmarks", read_landmarks),
        attempt("boxes", read_boxes),
    )


def _assemble(root: Path, image_set: ImageSet, tables: _Tables) -> CelebA:
    ids = tables.attributes.image_ids
    image_dir = find_image_dir(root, image_set)
    p, i, lm, bx = tables.partition, tables.identity, tables.landmarks, tables.boxes
    return CelebA(
        root=root,
        image_dir=image_dir,
        image_ids=ids,
        attribute_names=tables.attributes.names,
        labels=tables.attributes.labels,
        partition=None if p is None else _aligned(ids, p.image_ids, p.partition, -1),
        identity=None if i is None else _aligned(ids, i.image_ids, i.identity, -1),
        landmarks=None if lm is None else _aligned(ids, lm.image_ids, lm.landmarks, np.nan),
        boxes=None if bx is None else _aligned(ids, bx.image_ids, bx.boxes, np.nan),
        present=_isin(ids, _image_names(image_dir)),
        files=tables.files,
    )


class DatasetError(ValueError):
    """A dataset folder with errors: what ``faceattr data check`` reports as errors."""


_shown_warnings: set[tuple[str, str]] = set()


def load_celeba(
    root: str | Path,
    image_set: ImageSet = "align",
    annotation_dirs: Sequence[str | Path] = (),
) -> CelebA:
    """Load the CelebA folder ``root``, validated as ``faceattr data check`` validates it: a
    malformed file raises :class:`AnnotationError` (file and line), any other error (id sets that
    disagree) :class:`DatasetError`; warnings (missing images, ...) are logged once per process.

    Each annotation file is looked up in root (and its ``Anno/``, ``Eval/``), then in
    ``annotation_dirs``, then in :func:`annotation_cache_dir`; only the attribute file is required.
    """
    root = Path(root)
    _check_image_set(image_set)
    files = _find_files(root, image_set, annotation_dirs)
    if "attributes" not in files:
        searched = ", ".join(str(d) for d in _search_dirs(root, annotation_dirs))
        raise FileNotFoundError(f"no {ATTRIBUTE_FILE}.txt or .csv in {searched}")
    tables = _read_tables(files)
    assert tables is not None  # the attribute file exists, and errors raise
    data = _assemble(root, image_set, tables)
    report = CheckReport(root, image_set, files={k: str(p) for k, p in files.items()})
    _validate(report, tables, data)
    if report.errors:
        raise DatasetError(
            f"{root}: {'; '.join(report.errors)} (`faceattr data check {root}` lists everything)"
        )
    for warning in report.warnings:
        if (str(root), warning) not in _shown_warnings:
            _shown_warnings.add((str(root), warning))
            log.warning("%s: %s", root, warning)
    return data


def _check_image_set(image_set: str) -> None:
    if image_set not in IMAGE_SETS:
        raise ValueError(
            f"unknown image set {image_set!r}; expected one of {', '.join(IMAGE_SETS)}"
        )


@dataclass
class CheckReport:
    """What :func:`check_celeba` found: counts, the files used, warnings and errors."""

    root: Path
    image_set: str
    files: dict[str, str]  # kind -> file used, or "not found"
    rows: int = 0
    attributes: int = 0
    split_counts: dict[str, int] = field(default_factory=dict)  # annotated rows per split
    present_split_counts: dict[str, int] = field(default_factory=dict)  # present images per split
    identities: int | None = None
    identity_disjoint: bool | None = None
    present: int = 0
    missing: int = 0
    image_dir: Path | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong enough to stop a job (warnings are allowed)."""
        return not self.errors

    def format(self) -> str:
        """A human summary, several lines."""
        lines = [f"CelebA {self.image_set} at {self.root}", "files:"]
        lines += [f"  {kind:<11} {where}" for kind, where in self.files.items()]
        if self.rows:
            lines.append(f"rows: {self.rows:,} annotated images, {self.attributes} attributes")
        if self.split_counts:
            lines.append(
                "splits: "
                + ", ".join(
                    f"{s} {n:,} ({self.present_split_counts.get(s, 0):,} present)"
                    for s, n in self.split_counts.items()
                )
            )
        if self.identities is not None:
            disjoint = {True: "yes", False: "NO", None: "unknown"}[self.identity_disjoint]
            lines.append(
                f"identities: {self.identities:,}; identity-disjoint partition: {disjoint}"
            )
        if self.image_dir is not None:
            lines.append(
                f"images: {self.present:,} present in {self.image_dir}, {self.missing:,} missing"
            )
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"error: {e}" for e in self.errors]
        lines.append("OK" if self.ok else f"FAILED: {len(self.errors)} error(s)")
        return "\n".join(lines)


def _line_of(path: Path, image_id: str) -> int | None:
    """The 1-based line of ``path`` that annotates ``image_id`` (for messages; a linear scan)."""
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            if line.startswith(image_id) and line[len(image_id) : len(image_id) + 1] in " \t,":
                return number
    return None


def _examples(ids: np.ndarray, limit: int = 3) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (", ..." if len(ids) > limit else "")


def _compare_ids(report: CheckReport, tables: _Tables, kind: str) -> None:
    """Report ids that ``kind``'s file and the attribute file disagree on.

    Partition and identity files must cover the same images; landmark and box files may cover
    fewer (a detector run on the present images only), see :func:`_check_geometry`.
    """
    table = getattr(tables, kind)
    if table is None:
        return
    ids, theirs = tables.attributes.image_ids, table.image_ids
    attr, other = tables.files["attributes"].name, tables.files[kind].name
    extra = theirs[~_isin(theirs, ids)]
    if len(extra):
        report.errors.append(
            f"{other} names {len(extra):,} images that {attr} lacks ({_examples(extra)})"
        )
    lacking = ids[~_isin(ids, theirs)]
    if len(lacking) and kind in ("partition", "identity"):
        report.errors.append(
            f"{other} lacks {len(lacking):,} images of {attr} ({_examples(lacking)})"
        )


def _check_geometry(report: CheckReport, data: CelebA) -> None:
    """Warn about present images that a landmark or box file has no row for."""
    for kind, values in (("landmarks", data.landmarks), ("boxes", data.boxes)):
        if values is None:
            continue
        lacking = data.present & np.isnan(values.reshape(len(data), -1)).any(axis=1)
        if lacking.any():
            report.warnings.append(
                f"{data.files[kind].name} has no row for {int(lacking.sum()):,} of "
                f"{int(data.present.sum()):,} present images ({_examples(data.image_ids[lacking])})"
            )


def _check_split(report: CheckReport, data: CelebA) -> None:
    if data.partition is None:
        report.warnings.append(f"no {PARTITION_FILE} file: no train/val/test splits")
        return
    for name in SPLITS:
        in_split = data.partition == SPLIT_CODES[name]
        report.split_counts[name] = int(in_split.sum())
        report.present_split_counts[name] = int((in_split & data.present).sum())
    if data.identity is None:
        return
    report.identities = len(np.unique(data.identity[data.identity >= 0]))
    known = (data.identity >= 0) & (data.partition >= 0)
    pairs = np.unique(data.identity[known].astype(np.int64) * 4 + data.partition[known])
    shared_ids, counts = np.unique(pairs // 4, return_counts=True)
    shared = shared_ids[counts > 1]
    report.identity_disjoint = len(shared) == 0
    if len(shared):
        report.warnings.append(
            f"partition is not identity-disjoint: {len(shared):,} identities appear in more "
            f"than one split ({_examples(shared)})"
        )


def _check_images(report: CheckReport, data: CelebA) -> None:
    report.image_dir = data.image_dir
    report.present = int(data.present.sum())
    report.missing = len(data) - report.present
    if not data.image_dir.is_dir():
        report.warnings.append(f"image folder {data.image_dir} not found: no images present")
    elif report.missing:
        first = str(data.image_ids[np.argmin(data.present)])
        attr = data.files["attributes"]
        report.warnings.append(
            f"{report.missing:,} of {len(data):,} annotated images are missing from "
            f"{data.image_dir.name}/ (partial download?), first {first} at "
            f"{attr.name}:{_line_of(attr, first)}"
        )
    on_disk = _image_names(data.image_dir)
    unannotated = on_disk[~_isin(on_disk, data.image_ids)]
    if len(unannotated):
        report.warnings.append(
            f"{len(unannotated):,} files in {data.image_dir.name}/ have no annotations "
            f"({_examples(np.sort(unannotated))})"
        )


def verify_images(paths: Sequence[Path], progress: bool = True) -> list[tuple[Path, str]]:
    """Decode every image fully; the ones that fail (truncated, corrupt, over the pixel budget)
    with the reason."""
    bad = []
    for path in tqdm(paths, desc="verify images", unit="img", disable=not progress):
        try:
            with open_image(path) as image:
                image.load()
        except (OSError, SyntaxError, ValueError) as exc:
            bad.append((path, str(exc)))
    return bad


def _validate(report: CheckReport, tables: _Tables, data: CelebA) -> None:
    """The checks of a folder whose files parsed: id sets, splits, images, geometry; the one
    validation that ``data check`` prints and every loading command applies."""
    for kind in ("partition", "identity", "landmarks", "boxes"):
        _compare_ids(report, tables, kind)
    report.rows, report.attributes = len(data), len(data.attribute_names)
    _check_split(report, data)
    _check_images(report, data)
    _check_geometry(report, data)


def _describe(path: Path | None, stem: str) -> str:
    if path is None:
        return f"not found ({stem}.txt or .csv)"
    kind = "Kaggle CSV" if path.suffix.lower() == ".csv" else "official text"
    return f"{path} ({kind})"


def check_celeba(
    root: str | Path,
    image_set: ImageSet = "align",
    annotation_dirs: Sequence[str | Path] = (),
    verify: bool = False,
) -> CheckReport:
    """Validate the CelebA folder ``root`` without stopping at the first problem.

    Malformed files and disagreeing id sets are errors; missing images, images without
    annotations and a partition that is not identity-disjoint are warnings. ``verify`` also
    decodes every present image (slow: a progress bar shows it) and warns about unreadable ones.
    """
    root = Path(root)
    _check_image_set(image_set)
    files = _find_files(root, image_set, annotation_dirs)
    stems = _file_stems(image_set)
    report = CheckReport(
        root=root,
        image_set=image_set,
        files={k: _describe(files.get(k), s) for k, s in stems.items()},
    )
    if "attributes" not in files:
        report.errors.append(f"no {ATTRIBUTE_FILE}.txt or .csv found in {root} or annotation dirs")
        return report
    tables = _read_tables(files, report.errors)
    if tables is None:
        return report
    data = _assemble(root, image_set, tables)
    _validate(report, tables, data)
    if verify:
        for path, reason in verify_images(
            [data.image_path(int(i)) for i in np.flatnonzero(data.present)]
        ):
            report.warnings.append(f"unreadable image {path}: {reason}")
    return report

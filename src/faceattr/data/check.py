"""The checks every loaded dataset gets: splits, identities, images on disk, geometry coverage.

Loaders report what is wrong with their own files (by file and line, or file name) into a
:class:`CheckReport`; :func:`validate` adds the checks that hold for any :class:`FaceDataset`.
``faceattr data check`` prints the report; every loading command raises on its errors.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from faceattr.data.formats import SPLIT_CODES
from faceattr.data.record import SPLITS, FaceDataset
from faceattr.image_files import open_image


@dataclass
class CheckReport:
    """What checking a dataset found: counts, the files used, warnings and errors."""

    root: Path
    format: str
    image_set: str
    files: dict[str, str] = field(default_factory=dict)  # kind -> file used, or "not found"
    rows: int = 0
    attributes: int = 0
    split_counts: dict[str, int] = field(default_factory=dict)  # annotated rows per split
    present_split_counts: dict[str, int] = field(default_factory=dict)  # present images per split
    partition_source: str = ""
    identities: int | None = None
    identity_disjoint: bool | None = None
    present: int = 0
    missing: int = 0
    missing_labels: int = 0
    image_dir: Path | None = None
    skipped: list[str] = field(default_factory=list)  # files a loader listed and left out
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong enough to stop a job (warnings are allowed)."""
        return not self.errors

    def format_text(self) -> str:
        """A human summary, several lines."""
        lines = [f"{self.format} ({self.image_set}) at {self.root}", "files:"]
        lines += [f"  {kind:<11} {where}" for kind, where in self.files.items()]
        if self.rows:
            lines.append(f"rows: {self.rows:,} annotated images, {self.attributes} attributes")
        if self.missing_labels:
            lines.append(f"missing labels: {self.missing_labels:,} (masked, never filled in)")
        if self.split_counts:
            lines.append(
                "splits: "
                + ", ".join(
                    f"{s} {n:,} ({self.present_split_counts.get(s, 0):,} present)"
                    for s, n in self.split_counts.items()
                )
                + (f" [{self.partition_source}]" if self.partition_source else "")
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
        if self.skipped:
            lines.append(f"skipped {len(self.skipped):,} file(s): " + "; ".join(self.skipped))
        lines += [f"warning: {w}" for w in self.warnings]
        lines += [f"error: {e}" for e in self.errors]
        lines.append("OK" if self.ok else f"FAILED: {len(self.errors)} error(s)")
        return "\n".join(lines)


def examples(ids: np.ndarray | Sequence[str], limit: int = 3) -> str:
    """The first ``limit`` of ``ids``, comma-separated, with an ellipsis when there are more."""
    shown = ", ".join(str(i) for i in list(ids)[:limit])
    return shown + (", ..." if len(ids) > limit else "")


def _check_split(report: CheckReport, data: FaceDataset) -> None:
    report.partition_source = data.partition_source
    if data.partition is None:
        report.warnings.append("no partition: no train/val/test splits")
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
            f"than one split ({examples(shared)})"
        )


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
"""The files counted as images when a folder is compared with the labels."""


def image_names(image_dir: Path) -> np.ndarray:
    """The names of the files directly in ``image_dir`` (empty when it is not a folder)."""
    if not image_dir.is_dir():
        return np.array([], dtype=str)
    with os.scandir(image_dir) as entries:
        return np.array([e.name for e in entries if e.is_file()], dtype=str)


def _check_images(report: CheckReport, data: FaceDataset, line_of: LineOf | None) -> None:
    report.image_dir = data.image_dir
    report.present = int(data.present.sum())
    report.missing = len(data) - report.present
    if not data.image_dir.is_dir():
        report.warnings.append(f"image folder {data.image_dir} not found: no images present")
    elif report.missing:
        first = str(data.image_ids[np.argmin(data.present)])
        where = f" at {line_of(first)}" if line_of is not None else ""
        report.warnings.append(
            f"{report.missing:,} of {len(data):,} annotated images are missing from "
            f"{data.image_dir.name}/ (partial download?), first {first}{where}"
        )
    if "/" in "".join(data.image_ids[:1].tolist()):
        return  # images in subfolders: the loader listed them (no flat folder to compare)
    on_disk = image_names(data.image_dir)
    on_disk = on_disk[[name.lower().endswith(IMAGE_SUFFIXES) for name in on_disk.tolist()]]
    listed = [entry.split(" (")[0] for entry in report.skipped]  # the loader named them already
    known = np.concatenate([data.image_ids.astype(str), np.asarray(listed, dtype=str)])
    unannotated = on_disk[~np.asarray(pd.Index(on_disk).isin(known), dtype=bool)]
    if len(unannotated):
        report.warnings.append(
            f"{len(unannotated):,} files in {data.image_dir.name}/ have no annotations "
            f"({examples(np.sort(unannotated))})"
        )


def _check_geometry(report: CheckReport, data: FaceDataset) -> None:
    """Warn about present images that a landmark or box file has no row for."""
    for kind, values in (("landmarks", data.landmarks), ("boxes", data.boxes)):
        if values is None:
            continue
        lacking = data.present & np.isnan(values.reshape(len(data), -1)).any(axis=1)
        if lacking.any():
            name = data.files[kind].name if kind in data.files else kind
            report.warnings.append(
                f"{name} has no row for {int(lacking.sum()):,} of "
                f"{int(data.present.sum()):,} present images ({examples(data.image_ids[lacking])})"
            )


class LineOf:
    """Finds the line of an image id in the file that labels it (for messages)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, image_id: str) -> str:
        with self.path.open(encoding="utf-8-sig") as f:
            for number, line in enumerate(f, start=1):
                if line.startswith(image_id) and line[len(image_id) : len(image_id) + 1] in " \t,":
                    return f"{self.path.name}:{number}"
        return self.path.name


def validate(report: CheckReport, data: FaceDataset, line_of: LineOf | None = None) -> None:
    """The checks of a loaded dataset: counts, splits, identities, images, geometry."""
    report.rows, report.attributes = len(data), len(data.schema)
    report.missing_labels = int((~data.known).sum())
    _check_split(report, data)
    _check_images(report, data, line_of)
    _check_geometry(report, data)


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

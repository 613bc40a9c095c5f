"""Dataset formats -> loaders: ``@register_loader`` makes a format loadable by
:func:`load_dataset` (by name, or detected from the files present), as models are registered.

A loader is one module with one function ``read(root, options, collector) -> FaceDataset | None``
that reads its format's files into a :class:`~faceattr.data.record.FaceDataset`, raising (or,
for ``faceattr data check``, listing through the collector) what is wrong with them by file and
line or file name. Everything else (split, image and geometry checks) is common.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from faceattr.data.check import CheckReport, LineOf, validate, verify_images
from faceattr.data.loaders.common import Collector, LoadOptions
from faceattr.data.record import DatasetError, FaceDataset, ImageSet

log = logging.getLogger(__name__)

Reader = Callable[[Path, LoadOptions, Collector], FaceDataset | None]


@dataclass(frozen=True)
class Loader:
    """A registered format: its reader, and a test of whether a root holds that format."""

    name: str
    read: Reader
    detect: Callable[[Path], bool]
    summary: str


_LOADERS: dict[str, Loader] = {}


def register_loader(
    name: str, detect: Callable[[Path], bool], summary: str
) -> Callable[[Reader], Reader]:
    """Decorator registering ``read`` as the loader of format ``name``."""

    def decorate(read: Reader) -> Reader:
        if name in _LOADERS:
            raise ValueError(f"dataset format {name!r} is already registered")
        _LOADERS[name] = Loader(name, read, detect, summary)
        return read

    return decorate


def list_formats() -> list[str]:
    """The registered format names, in detection order."""
    return list(_LOADERS)


def loader(name: str) -> Loader:
    """The loader of format ``name``; a ``KeyError`` lists the known ones."""
    if name not in _LOADERS:
        raise KeyError(f"unknown dataset format {name!r}; known: {', '.join(_LOADERS)}")
    return _LOADERS[name]


def detect_format(root: str | Path) -> str:
    """The first registered format whose files ``root`` holds."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} is not a folder")
    for entry in _LOADERS.values():
        if entry.detect(root):
            return entry.name
    raise DatasetError(
        f"{root}: no known dataset layout found; pass --format (one of {', '.join(_LOADERS)})"
    )


def _read(
    root: Path, format: str | None, options: LoadOptions, collect: bool
) -> tuple[FaceDataset | None, CheckReport]:
    name = format or detect_format(root)
    report = CheckReport(root, name, options.image_set)
    collector = Collector(report, collect)
    data = loader(name).read(root, options, collector)
    if data is not None:
        data.files.update(collector.files)
        labels = collector.files.get("attributes")
        line_of = (
            LineOf(labels) if labels is not None and labels.suffix in (".txt", ".csv") else None
        )
        report.image_set = data.image_set
        validate(report, data, line_of)
    return data, report


_shown_warnings: set[tuple[str, str]] = set()


def load_dataset(
    root: str | Path,
    *,
    format: str | None = None,
    image_set: ImageSet = "align",
    annotation_dirs: Sequence[str | Path] = (),
    split_seed: int = 0,
) -> FaceDataset:
    """Load the dataset at ``root`` in ``format`` (None: detected), validated as ``faceattr data
    check`` validates it: a malformed file raises ``AnnotationError`` (file and line), other
    errors :class:`DatasetError`; warnings and skipped files are logged once per process."""
    options = LoadOptions(image_set, tuple(Path(d) for d in annotation_dirs), split_seed)
    data, report = _read(Path(root), format, options, collect=False)
    if report.errors or data is None:
        raise DatasetError(
            f"{root}: {'; '.join(report.errors)} (`faceattr data check {root}` lists everything)"
        )
    notes = [*report.warnings]
    if report.skipped:
        notes.append(f"skipped {len(report.skipped)} file(s): {'; '.join(report.skipped)}")
    for note in notes:
        if (str(root), note) not in _shown_warnings:
            _shown_warnings.add((str(root), note))
            log.warning("%s: %s", root, note)
    return data


def check_dataset(
    root: str | Path,
    *,
    format: str | None = None,
    image_set: ImageSet = "align",
    annotation_dirs: Sequence[str | Path] = (),
    split_seed: int = 0,
    verify: bool = False,
) -> CheckReport:
    """Validate the dataset at ``root`` without stopping at the first problem; ``verify`` also
    decodes every present image (slow: a progress bar shows it)."""
    root = Path(root)
    options = LoadOptions(image_set, tuple(Path(d) for d in annotation_dirs), split_seed)
    try:
        data, report = _read(root, format, options, collect=True)
    except (DatasetError, FileNotFoundError, KeyError, ValueError) as exc:
        report = CheckReport(root, format or "unknown", image_set)
        report.errors.append(str(exc).strip("'\""))
        return report
    if verify and data is not None:
        rows = np.flatnonzero(data.present)
        for path, reason in verify_images([data.image_path(int(i)) for i in rows]):
            report.warnings.append(f"unreadable image {path}: {reason}")
    return report


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset is and how to read it: what ``data.root``, ``data.format``,
    ``data.image_set``, ``data.annotations`` and ``data.split_seed`` say."""

    root: Path
    format: str | None = None
    image_set: ImageSet = "align"
    annotations: tuple[Path, ...] = ()
    split_seed: int = 0

    @classmethod
    def of(cls, value: str | Path | DatasetSource | Mapping[str, Any]) -> DatasetSource:
        """A source from itself, a bare root (format detected), or a ``data`` config mapping."""
        if isinstance(value, DatasetSource):
            return value
        if isinstance(value, str | Path):
            return cls(Path(value))
        return cls(
            root=Path(str(value["root"])).expanduser(),
            format=value.get("format"),
            image_set=value.get("image_set", "align"),
            annotations=tuple(Path(p) for p in value.get("annotations") or ()),
            split_seed=int(value.get("split_seed", 0)),
        )

    def load(self) -> FaceDataset:
        """The dataset, loaded and validated (see :func:`load_dataset`)."""
        return load_dataset(
            self.root,
            format=self.format,
            image_set=self.image_set,
            annotation_dirs=self.annotations,
            split_seed=self.split_seed,
        )

    def check(self, verify: bool = False) -> CheckReport:
        """The dataset's check report (see :func:`check_dataset`)."""
        return check_dataset(
            self.root,
            format=self.format,
            image_set=self.image_set,
            annotation_dirs=self.annotations,
            split_seed=self.split_seed,
            verify=verify,
        )


# The built-in formats, in detection order (CelebA-HQ before CelebA: both hold CelebA's files).
# isort: off
from faceattr.data.loaders import celeba as _celeba  # noqa: E402,F401
from faceattr.data.loaders import celebahq as _celebahq  # noqa: E402,F401
from faceattr.data.loaders import lfwa as _lfwa  # noqa: E402,F401
from faceattr.data.loaders import utkface as _utkface  # noqa: E402,F401
from faceattr.data.loaders import folder as _folder  # noqa: E402,F401
# isort: on

"""A folder of images with a CSV of labels (``folder``): ``labels.csv`` (or the only ``*.csv`` in
the root) with an ``image`` column of paths relative to the root, any label columns, and
optional ``split`` (train/val/test) and ``identity`` columns; an optional ``schema.json`` (a list
of :meth:`~faceattr.data.schema.Attribute.to_json` objects) declares the kinds of the columns.

Undeclared columns must be binary (0/1, -1/1, yes/no or true/false, any case); a blank cell is a
missing label (NaN). Every malformed cell raises :class:`AnnotationError` naming the file and
line. Without a ``split`` column the partition is generated: identity-disjoint when there is an
``identity`` column, else random (seeded, saved).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
import pandas as pd

from faceattr.data.check import image_names
from faceattr.data.formats import SPLIT_CODES, AnnotationError
from faceattr.data.loaders import register_loader
from faceattr.data.loaders.common import (
    Collector,
    LoadOptions,
    detected_geometry,
    generated_partition,
    isin,
)
from faceattr.data.record import FaceDataset
from faceattr.data.schema import Attribute, Schema, SchemaError

LABEL_FILE = "labels.csv"
SCHEMA_FILE = "schema.json"
IMAGE, SPLIT, IDENTITY = "image", "split", "identity"
BINARY_CODINGS: tuple[dict[str, float], ...] = (
    {"0": 0.0, "1": 1.0},
    {"-1": 0.0, "1": 1.0},
    {"no": 0.0, "yes": 1.0},
    {"false": 0.0, "true": 1.0},
)
SHARES = (0.8, 0.1, 0.1)


@dataclass(frozen=True, eq=False)
class FolderTable:
    """The CSV's rows: image paths, the schema and labels, and the split and identity columns
    (-1 where blank; None when the CSV has no such column)."""

    image_ids: np.ndarray
    schema: Schema
    labels: np.ndarray
    split: np.ndarray | None
    identity: np.ndarray | None


def find_csv(root: Path) -> Path | None:
    """``labels.csv`` in root, else the only ``*.csv`` there (None when none or several)."""
    if (root / LABEL_FILE).is_file():
        return root / LABEL_FILE
    found = sorted(p for p in root.glob("*.csv") if p.is_file())
    return found[0] if len(found) == 1 else None


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return [c.strip() for c in next(csv.reader(f), [])]


def read_schema_file(path: Path) -> Schema:
    """Read ``schema.json``: a list of attribute objects (``name``, ``kind``, ``classes``,
    ``low``, ``high``, ``unit``); a malformed file raises :class:`AnnotationError`."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AnnotationError(path, getattr(exc, "lineno", None), f"not JSON ({exc})") from None
    if not isinstance(values, list) or not all(isinstance(v, dict) for v in values):
        raise AnnotationError(path, None, 'expected a list of {"name": ..., "kind": ...}')
    try:
        return Schema.from_json(values)
    except KeyError as exc:
        raise AnnotationError(path, None, f"an attribute lacks {exc}") from None
    except (SchemaError, TypeError, ValueError) as exc:
        raise AnnotationError(path, None, str(exc)) from None


def _image_ids(path: Path, values: pd.Series, lines: np.ndarray) -> np.ndarray:
    """The image paths, normalised (``./a.jpg`` is ``a.jpg``); blank, absolute, escaping
    (``..``) and duplicate paths raise."""
    ids = []
    for value, line in zip(values.tolist(), lines.tolist(), strict=True):
        posix = PurePosixPath(value)
        if not value or value == ".":
            raise AnnotationError(path, line, f"blank {IMAGE!r} cell")
        if posix.is_absolute() or PureWindowsPath(value).anchor or ".." in posix.parts:
            raise AnnotationError(path, line, f"image path {value!r} is outside the folder")
        ids.append(str(posix))
    out = np.array(ids, dtype=str)
    twice = pd.Series(out).duplicated(keep=False).to_numpy()
    if twice.any():
        first, second = lines[twice][:2]
        image = out[twice][0]
        raise AnnotationError(path, int(second), f"image {image} is listed twice (line {first})")
    return out


def _binary(
    path: Path, name: str, values: pd.Series, lines: np.ndarray, declared: bool
) -> np.ndarray:
    lower = values.str.lower()
    seen = set(lower.unique()) - {""}
    for coding in BINARY_CODINGS:
        if seen <= coding.keys():
            return lower.map(coding).to_numpy(dtype=np.float32)
    first_given = lower[lower != ""].iloc[0]
    coding = next((c for c in BINARY_CODINGS if first_given in c), BINARY_CODINGS[0])
    bad = (lower != "") & ~lower.isin(list(coding))
    line, value = int(lines[bad.to_numpy()][0]), values[bad].iloc[0]
    hint = "" if declared else f" (declare its kind in {SCHEMA_FILE})"
    raise AnnotationError(
        path,
        line,
        f"column {name!r}: {value!r} is not binary like the column's other values "
        f"({'/'.join(coding)}; one of 0/1, -1/1, yes/no, true/false){hint}",
    )


def _column(
    path: Path, attribute: Attribute, values: pd.Series, lines: np.ndarray, declared: bool
) -> np.ndarray:
    """One label column as float32 (binary 0/1, a class index, a number); NaN where blank."""
    blank = (values == "").to_numpy()
    if attribute.kind == "binary":
        return _binary(path, attribute.name, values, lines, declared)
    if attribute.kind == "categorical":
        codes = pd.Index(attribute.classes).get_indexer(pd.Index(values))
        bad = (codes < 0) & ~blank
        if bad.any():
            raise AnnotationError(
                path,
                int(lines[bad][0]),
                f"column {attribute.name!r}: {values[bad].iloc[0]!r} is not one of its classes "
                f"({', '.join(attribute.classes)})",
            )
        return np.where(blank, np.nan, codes).astype(np.float32)
    numbers = pd.to_numeric(values.where(~blank), errors="coerce").to_numpy(dtype=np.float64)
    low = -np.inf if attribute.low is None else attribute.low
    high = np.inf if attribute.high is None else attribute.high
    bad = ~blank & ~(np.isfinite(numbers) & (numbers >= low) & (numbers <= high))
    if bad.any():
        raise AnnotationError(
            path,
            int(lines[bad][0]),
            f"column {attribute.name!r}: {values[bad].iloc[0]!r} is not a number in "
            f"{attribute.low}..{attribute.high}",
        )
    return numbers.astype(np.float32)


def _split(path: Path, values: pd.Series, lines: np.ndarray) -> np.ndarray:
    codes = values.str.lower().map({**SPLIT_CODES, "": -1})
    bad = codes.isna().to_numpy()
    if bad.any():
        raise AnnotationError(
            path,
            int(lines[bad][0]),
            f"unknown split {values[bad].iloc[0]!r}; expected {', '.join(SPLIT_CODES)} or blank",
        )
    return codes.to_numpy(dtype=np.int8)


def _identity(values: pd.Series) -> np.ndarray:
    """Identities as int32: the numbers themselves when all are whole numbers, else the index
    of each name among the sorted names; -1 where blank."""
    given = values != ""
    if values[given].str.fullmatch(r"\d{1,9}").all():
        return np.where(given, pd.to_numeric(values.where(given)), -1).astype(np.int32)
    codes, _ = pd.factorize(values.where(given), sort=True)
    return codes.astype(np.int32)


def _cells(path: Path) -> tuple[list[str], pd.DataFrame, np.ndarray]:
    """The CSV's header, its non-blank rows as stripped strings ("" where blank or short) and
    the line of each row; a row longer than the header raises."""
    try:
        frame = pd.read_csv(
            path,
            header=None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
            engine="c",
        )
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, None, f"not UTF-8 text ({exc.reason})") from None
    except pd.errors.EmptyDataError:
        raise AnnotationError(path, 1, "empty file") from None
    except pd.errors.ParserError as exc:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if found is None:
            raise AnnotationError(path, None, str(exc).strip()) from None
        expected, line, saw = found.groups()
        raise AnnotationError(
            path, int(line), f"{saw} fields, but the header has {expected}"
        ) from None
    frame = frame.fillna("").apply(lambda column: column.str.strip())
    header = frame.iloc[0].tolist()
    frame = frame.iloc[1:]
    frame = frame[(frame != "").any(axis=1)]
    lines = frame.index.to_numpy() + 1
    frame = frame.reset_index(drop=True)
    frame.columns = header
    return header, frame, lines


def read_label_csv(path: Path, declared: Schema | None = None) -> FolderTable:
    """Read the label CSV, typing its columns by ``declared`` (the schema file) or as binary."""
    declared = declared or Schema(())
    header, frame, lines = _cells(path)
    if IMAGE not in header:
        raise AnnotationError(path, 1, f"no {IMAGE!r} column (header: {', '.join(header)})")
    twice = [c for c in header if header.count(c) > 1]
    if twice:
        raise AnnotationError(path, 1, f"column {twice[0]!r} is named twice")
    ids = _image_ids(path, frame[IMAGE], lines)
    names = [c for c in header if c not in (IMAGE, SPLIT, IDENTITY)]
    absent = [n for n in declared.names if n not in names]
    if absent:
        raise AnnotationError(path, 1, f"no column {absent[0]!r}, which {SCHEMA_FILE} declares")
    attributes: list[Attribute] = []
    for name in names:
        try:
            attributes.append(declared[name] if name in declared else Attribute(name))
        except SchemaError as exc:
            raise AnnotationError(path, 1, str(exc)) from None
    columns = [_column(path, a, frame[a.name], lines, a.name in declared) for a in attributes]
    labels = np.stack(columns, axis=1) if columns else np.zeros((len(ids), 0), np.float32)
    return FolderTable(
        image_ids=ids,
        schema=Schema(tuple(attributes)),
        labels=labels,
        split=_split(path, frame[SPLIT], lines) if SPLIT in header else None,
        identity=_identity(frame[IDENTITY]) if IDENTITY in header else None,
    )


def files_present(root: Path, ids: np.ndarray) -> np.ndarray:
    """Which of the relative paths ``ids`` are files under ``root`` (one listing per folder)."""
    parents = np.char.rpartition(ids, "/")[:, 0] if len(ids) else ids
    on_disk = [
        f"{folder}/{name}" if folder else str(name)
        for folder in np.unique(parents).tolist()
        for name in image_names(root / folder).tolist()
    ]
    return isin(ids, np.array(on_disk, dtype=str))


def _partition(root: Path, table: FolderTable, path: Path, seed: int) -> tuple[np.ndarray, str]:
    """The split column, or a generated partition (whole identities when they are known)."""
    if table.split is not None:
        return table.split, f"the {SPLIT!r} column of {path.name}"
    groups = table.identity
    if groups is not None:  # an image without an identity is a group of its own
        unknown = groups < 0
        groups = groups.astype(np.int64)
        groups[unknown] = groups.max(initial=0) + 1 + np.arange(int(unknown.sum()))
    return generated_partition(root, "folder", table.image_ids, groups, SHARES, seed)


def _detect(root: Path) -> bool:
    path = find_csv(root)
    try:
        return path is not None and IMAGE in _header(path)
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


@register_loader("folder", _detect, "a folder of images + labels.csv (image, labels, split)")
def read(root: Path, options: LoadOptions, collector: Collector) -> FaceDataset | None:
    """Read a folder of images with a label CSV and an optional ``schema.json``."""
    path = find_csv(root)
    if path is None:
        raise FileNotFoundError(f"{root}: no {LABEL_FILE} (nor a single other *.csv)")
    schema_path = root / SCHEMA_FILE
    declared = None
    if schema_path.is_file():
        declared = collector.attempt("schema", schema_path, read_schema_file)
        collector.report.files["schema"] = f"{schema_path} (JSON)"
        if declared is None:
            return None
    table = collector.attempt("attributes", path, lambda p: read_label_csv(p, declared))
    if table is None:
        return None
    ids = table.image_ids
    partition, source = _partition(root, table, path, options.split_seed)
    landmarks, boxes = detected_geometry(collector, root, ids, options.annotation_dirs)
    return FaceDataset(
        format="folder",
        root=root,
        image_dir=root,
        image_ids=ids,
        schema=table.schema,
        labels=table.labels,
        partition=partition,
        identity=table.identity,
        landmarks=landmarks,
        boxes=boxes,
        present=files_present(root, ids),
        image_set="wild",
        partition_source=source,
    )

"""Read and write CelebA's annotation files: the official ``.txt`` layouts and Kaggle's ``.csv``.

Every table is a frozen dataclass of numpy columns (never one object per row). Readers parse with
pandas' C engine and validate vectorised; only when something is wrong do they scan the file line
by line to name the first bad line in an :class:`AnnotationError`. Writers reproduce the official
layouts byte for byte (padding, header lines, line endings), or Kaggle's CSV when the suffix is
``.csv``; reading back what was written gives identical arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.attributes import ATTRIBUTE_INDEX

LANDMARK_POINTS: tuple[str, ...] = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")
LANDMARK_COLUMNS: tuple[str, ...] = tuple(f"{p}_{c}" for p in LANDMARK_POINTS for c in "xy")
BOX_COLUMNS: tuple[str, ...] = ("x_1", "y_1", "width", "height")
SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2}


class AnnotationError(ValueError):
    """A malformed annotation file; ``line`` is 1-based, or None when no single line is at fault."""

    def __init__(self, path: str | Path, line: int | None, reason: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{self.path.name}:{line}" if line is not None else self.path.name
        super().__init__(f"{where}: {reason}")


def _ids(image_ids: object) -> np.ndarray:
    ids = np.asarray(image_ids, dtype=str)
    if ids.ndim != 1:
        raise ValueError(f"image_ids must be 1-D, got shape {ids.shape}")
    return ids


def _column(values: object, dtype: type, n: int, shape: tuple[int, ...], what: str) -> np.ndarray:
    array: np.ndarray = np.asarray(values, dtype=dtype)
    if array.shape != (n, *shape):
        raise ValueError(f"{what} must have shape {(n, *shape)}, got {array.shape}")
    return array


@dataclass(frozen=True, eq=False)
class AttributeTable:
    """Binary labels: ``labels[i, k]`` is 1 when image ``image_ids[i]`` has ``names[k]``."""

    image_ids: np.ndarray
    names: tuple[str, ...]
    labels: np.ndarray

    def __post_init__(self) -> None:
        ids = _ids(self.image_ids)
        labels = _column(self.labels, np.uint8, len(ids), (len(self.names),), "labels")
        if labels.size and labels.max() > 1:
            raise ValueError("labels must be 0 or 1")
        object.__setattr__(self, "image_ids", ids)
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return len(self.image_ids)


@dataclass(frozen=True, eq=False)
class PartitionTable:
    """The official split of each image: 0 train, 1 val, 2 test (see :data:`SPLIT_CODES`)."""

    image_ids: np.ndarray
    partition: np.ndarray

    def __post_init__(self) -> None:
        ids = _ids(self.image_ids)
        object.__setattr__(self, "image_ids", ids)
        object.__setattr__(
            self, "partition", _column(self.partition, np.int8, len(ids), (), "partition")
        )

    def __len__(self) -> int:
        return len(self.image_ids)


@dataclass(frozen=True, eq=False)
class IdentityTable:
    """The celebrity identity of each image."""

    image_ids: np.ndarray
    identity: np.ndarray

    def __post_init__(self) -> None:
        ids = _ids(self.image_ids)
        object.__setattr__(self, "image_ids", ids)
        object.__setattr__(
            self, "identity", _column(self.identity, np.int32, len(ids), (), "identity")
        )

    def __len__(self) -> int:
        return len(self.image_ids)


@dataclass(frozen=True, eq=False)
class LandmarkTable:
    """Five (x, y) points per image, in :data:`LANDMARK_POINTS` order."""

    image_ids: np.ndarray
    landmarks: np.ndarray

    def __post_init__(self) -> None:
        ids = _ids(self.image_ids)
        object.__setattr__(self, "image_ids", ids)
        object.__setattr__(
            self, "landmarks", _column(self.landmarks, np.float32, len(ids), (5, 2), "landmarks")
        )

    def __len__(self) -> int:
        return len(self.image_ids)


@dataclass(frozen=True, eq=False)
class BoxTable:
    """One face box per image: x_1, y_1 (top-left corner), width, height."""

    image_ids: np.ndarray
    boxes: np.ndarray

    def __post_init__(self) -> None:
        ids = _ids(self.image_ids)
        object.__setattr__(self, "image_ids", ids)
        object.__setattr__(self, "boxes", _column(self.boxes, np.float32, len(ids), (4,), "boxes"))

    def __len__(self) -> int:
        return len(self.image_ids)


@dataclass(frozen=True)
class _Layout:
    """How one kind of annotation file is laid out, and which values it may hold."""

    columns: tuple[str, ...] | None  # value columns; None: the attribute names the file declares
    counted: bool  # the .txt form starts with a count line and a header line
    id_in_header: bool  # the .txt header line starts with ``image_id``
    integer: bool
    valid: Callable[[np.ndarray], np.ndarray]  # (N, K) values -> (N, K) bool
    expected: str  # what ``valid`` accepts, in words
    widths: tuple[int, int] = (0, 0)  # .txt padding of the first and of later values
    newline: str = "\r\n"  # the line ending of the real file
    terminated: bool = True  # the real file ends with a line ending
    trailing: str = ""  # what ends the real .txt header line


def _finite(values: np.ndarray) -> np.ndarray:
    return np.isfinite(values)


def _box_valid(values: np.ndarray) -> np.ndarray:
    ok = np.isfinite(values)
    ok[:, 2:] &= values[:, 2:] >= 0
    return ok


_ATTRIBUTES = _Layout(
    columns=None,
    counted=True,
    id_in_header=False,
    integer=True,
    valid=lambda v: (v == 1) | (v == -1),
    expected="-1 or 1",
    widths=(0, 3),
    trailing=" ",
)
_PARTITION = _Layout(
    columns=("partition",),
    counted=False,
    id_in_header=False,
    integer=True,
    valid=lambda v: (v >= 0) & (v <= 2),
    expected="0, 1 or 2",
    newline="\n",
    terminated=False,
)
_IDENTITY = _Layout(
    columns=("identity",),
    counted=False,
    id_in_header=False,
    integer=True,
    valid=lambda v: (v >= 0) & (v <= np.iinfo(np.int32).max),
    expected="a non-negative integer",
)
_LANDMARKS = _Layout(
    columns=LANDMARK_COLUMNS,
    counted=True,
    id_in_header=False,
    integer=False,
    valid=_finite,
    expected="a finite number",
    widths=(0, 5),
)
_BOXES = _Layout(
    columns=BOX_COLUMNS,
    counted=True,
    id_in_header=True,
    integer=False,
    valid=_box_valid,
    expected="a finite number (width, height >= 0)",
    widths=(5, 4),
)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".txt", ".csv"):
        raise ValueError(f"{path}: unknown annotation format {suffix!r}; expected .txt or .csv")
    return suffix


def _header_names(path: Path, layout: _Layout, tokens: list[str], line: int) -> tuple[str, ...]:
    """The value columns a header line declares, checked against ``layout``."""
    names = tokens[1:] if tokens[:1] == ["image_id"] else tokens
    if layout.columns is not None:
        if tuple(names) != layout.columns:
            raise AnnotationError(
                path,
                line,
                f"expected header {' '.join(layout.columns)!r}, got {' '.join(tokens)!r}",
            )
        return layout.columns
    if not names:
        raise AnnotationError(path, line, "expected the attribute names, got an empty line")
    unknown = [n for n in names if n not in ATTRIBUTE_INDEX]
    if unknown:
        raise AnnotationError(path, line, f"unknown attribute name {unknown[0]!r}")
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise AnnotationError(path, line, f"attribute {twice!r} is named twice")
    return tuple(names)


def _read_header(path: Path, layout: _Layout) -> tuple[tuple[str, ...], int, int | None]:
    """Value column names, lines before the first row, and the declared row count (or None)."""
    with path.open(encoding="utf-8-sig") as f:
        first = f.readline()
        second = f.readline()
    if not first.strip() and not second:
        raise AnnotationError(path, 1, "empty file")
    if _suffix(path) == ".csv":
        tokens = [t.strip() for t in first.split(",")]
        if tokens[0] != "image_id":
            raise AnnotationError(
                path, 1, f"expected a header starting with 'image_id', got {first.strip()!r}"
            )
        return _header_names(path, layout, tokens, 1), 1, None
    if not layout.counted:
        assert layout.columns is not None
        return layout.columns, 0, None
    try:
        count = int(first)
    except ValueError:
        raise AnnotationError(
            path, 1, f"expected the number of rows, got {first.strip()!r}"
        ) from None
    return _header_names(path, layout, second.split(), 2), 2, count


def _parse(token: str, integer: bool) -> float | int | None:
    try:
        return int(token) if integer else float(token)
    except ValueError:
        return None


def _first_error(
    path: Path, layout: _Layout, names: tuple[str, ...], skip: int, count: int | None
) -> AnnotationError:
    """Scan ``path`` line by line and describe its first bad line (the slow path, on failure)."""
    width = len(names) + 1
    seen: dict[str, int] = {}
    csv = _suffix(path) == ".csv"
    with path.open(encoding="utf-8-sig") as f:
        for line_no, line in enumerate(f, start=1):
            if line_no <= skip or not line.strip():
                continue
            fields = [t.strip() for t in line.split(",")] if csv else line.split()
            if len(fields) != width:
                return AnnotationError(
                    path,
                    line_no,
                    f"expected {width} fields (image_id + {len(names)} values), got {len(fields)}",
                )
            image_id, tokens = fields[0], fields[1:]
            values = [_parse(t, layout.integer) for t in tokens]
            bad = [v is None for v in values]
            if not any(bad):
                bad = list(~layout.valid(np.array([values], dtype=float))[0])
            if any(bad):
                k = bad.index(True)
                return AnnotationError(
                    path,
                    line_no,
                    f"bad value {tokens[k]!r} for {names[k]}: expected {layout.expected}",
                )
            if image_id in seen:
                return AnnotationError(
                    path, line_no, f"duplicate image id {image_id} (first on line {seen[image_id]})"
                )
            seen[image_id] = line_no
    if count is not None and count != len(seen):
        return AnnotationError(
            path, 1, f"the count line says {count} rows, the file has {len(seen)}"
        )
    return AnnotationError(path, None, "could not be parsed")


def _read(path: str | Path, layout: _Layout) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Image ids, value column names and the (N, K) values of one annotation file."""
    path = Path(path)
    try:
        return _read_text(path, layout)
    except UnicodeDecodeError as exc:
        raise AnnotationError(
            path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None


def _read_text(path: Path, layout: _Layout) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    csv = _suffix(path) == ".csv"
    names, skip, count = _read_header(path, layout)
    try:
        frame = pd.read_csv(
            path,
            sep="," if csv else r"\s+",
            header=None,
            skiprows=skip,
            names=range(len(names) + 1),
            index_col=False,
            dtype={0: str},
            engine="c",
        )
    except pd.errors.EmptyDataError:  # a header and no rows
        frame = pd.DataFrame(columns=range(len(names) + 1))
    except (pd.errors.ParserError, ValueError):
        raise _first_error(path, layout, names, skip, count) from None
    ids = frame[0].to_numpy(dtype=str)
    if frame.empty:
        frame = frame.astype({k: int for k in frame.columns[1:]})
    values = frame.iloc[:, 1:].to_numpy()
    wanted = "iu" if layout.integer else "iuf"
    ok = (
        all(frame[k].dtype.kind in wanted for k in frame.columns[1:])
        and bool(layout.valid(values).all())
        and (count is None or count == len(ids))
        and frame[0].is_unique
    )
    if not ok:
        raise _first_error(path, layout, names, skip, count)
    return ids, names, values


def read_attributes(path: str | Path) -> AttributeTable:
    """Read ``list_attr_celeba.txt`` or Kaggle's ``list_attr_celeba.csv``; -1/1 become 0/1."""
    ids, names, values = _read(path, _ATTRIBUTES)
    return AttributeTable(ids, names, (values > 0).astype(np.uint8))


def read_partition(path: str | Path) -> PartitionTable:
    """Read ``list_eval_partition.txt`` or ``.csv`` (0 train, 1 val, 2 test)."""
    ids, _, values = _read(path, _PARTITION)
    return PartitionTable(ids, values[:, 0].astype(np.int8))


def read_identities(path: str | Path) -> IdentityTable:
    """Read ``identity_CelebA.txt`` (or a ``.csv`` with header ``image_id,identity``)."""
    ids, _, values = _read(path, _IDENTITY)
    return IdentityTable(ids, values[:, 0].astype(np.int32))


def read_landmarks(path: str | Path) -> LandmarkTable:
    """Read ``list_landmarks_align_celeba.*`` or ``list_landmarks_celeba.*`` (5 points, x y)."""
    ids, _, values = _read(path, _LANDMARKS)
    return LandmarkTable(ids, values.astype(np.float32).reshape(-1, 5, 2))


def read_boxes(path: str | Path) -> BoxTable:
    """Read ``list_bbox_celeba.*`` (x_1, y_1, width, height)."""
    ids, _, values = _read(path, _BOXES)
    return BoxTable(ids, values.astype(np.float32))


def _tokens(values: np.ndarray, integer: bool) -> list[list[int | str]]:
    """Each value as the shortest text that reads back exactly (whole numbers without a point)."""
    whole = values == np.round(values)
    if integer or whole.all():
        return values.astype(np.int64).tolist()
    return np.where(whole, values.astype(np.int64).astype(str), values.astype(str)).tolist()


def _write(
    path: str | Path, layout: _Layout, ids: np.ndarray, names: tuple[str, ...], values: np.ndarray
) -> None:
    """Write one annotation file in the layout its suffix names."""
    path = Path(path)
    csv = _suffix(path) == ".csv"
    bad = ~layout.valid(values.astype(float))
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise ValueError(
            f"{path.name}: {ids[i]} {names[k]}={values[i, k]} is not {layout.expected}"
        )
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"{path.name}: image ids are not unique")
    unwritable = [i for i in ids.tolist() if not i or any(c in i for c in " \t\r\n,")]
    if unwritable:
        raise ValueError(f"{path.name}: image id {unwritable[0]!r} is empty or holds a separator")
    rows = _tokens(values, layout.integer)
    if csv:
        header = [",".join(("image_id", *names))]
        lines = [",".join(map(str, (i, *r))) for i, r in zip(ids.tolist(), rows, strict=True)]
        newline, end = "\n", "\n"
    else:
        first, rest = layout.widths
        fmt = f"%s %{first}s" + f" %{rest - 1}s" * (len(names) - 1)
        lines = [fmt % (i, *r) for i, r in zip(ids.tolist(), rows, strict=True)]
        header = []
        if layout.counted:
            head = " ".join(("image_id", *names)) if layout.id_in_header else " ".join(names)
            header = [str(len(ids)), head + layout.trailing]
        newline = layout.newline
        end = newline if layout.terminated else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(newline.join(header + lines) + end)


def write_attributes(path: str | Path, table: AttributeTable) -> None:
    """Write labels as ``list_attr_celeba.txt`` (official padding) or Kaggle ``.csv`` (-1/1)."""
    values = table.labels.astype(np.int8) * 2 - 1
    _write(path, _ATTRIBUTES, table.image_ids, table.names, values)


def write_partition(path: str | Path, table: PartitionTable) -> None:
    """Write ``list_eval_partition.txt`` (``id split``) or ``.csv``."""
    _write(path, _PARTITION, table.image_ids, ("partition",), table.partition[:, None])


def write_identities(path: str | Path, table: IdentityTable) -> None:
    """Write ``identity_CelebA.txt`` (``id identity``) or ``.csv``."""
    _write(path, _IDENTITY, table.image_ids, ("identity",), table.identity[:, None])


def write_landmarks(path: str | Path, table: LandmarkTable) -> None:
    """Write a landmark file (count line, header line, ``id`` + 10 coordinates) or ``.csv``."""
    _write(path, _LANDMARKS, table.image_ids, LANDMARK_COLUMNS, table.landmarks.reshape(-1, 10))


def write_boxes(path: str | Path, table: BoxTable) -> None:
    """Write a box file (count line, ``image_id x_1 y_1 width height``, rows) or ``.csv``."""
    _write(path, _BOXES, table.image_ids, BOX_COLUMNS, table.boxes)

"""Annotation readers and writers: the real files, Kaggle CSVs, malformed input, round trips."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from faceattr.attributes import ATTRIBUTE_INDEX, ATTRIBUTES
from faceattr.data.formats import (
    BOX_COLUMNS,
    LANDMARK_COLUMNS,
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
    write_attributes,
    write_boxes,
    write_identities,
    write_landmarks,
    write_partition,
)

KAGGLE_ROWS = 3000


@pytest.fixture(scope="module")
def real_attributes(celeba_root: Path) -> AttributeTable:
    return read_attributes(celeba_root / "list_attr_celeba.txt")


def test_real_attribute_file(real_attributes: AttributeTable) -> None:
    assert len(real_attributes) == 202_599
    assert real_attributes.names == ATTRIBUTES
    assert real_attributes.labels.dtype == np.uint8
    assert real_attributes.image_ids[0] == "000001.jpg"
    assert real_attributes.image_ids[-1] == "202599.jpg"
    male = real_attributes.labels[:, ATTRIBUTE_INDEX["Male"]].mean()
    assert round(100 * male, 2) == 41.68


@pytest.fixture(scope="module")
def real_partition(celeba_root: Path) -> PartitionTable:
    return read_partition(celeba_root / "list_eval_partition.txt")


@pytest.fixture(scope="module")
def real_identities(celeba_root: Path) -> IdentityTable:
    return read_identities(celeba_root / "identity_CelebA.txt")


def test_real_partition_and_identities(
    real_partition: PartitionTable, real_identities: IdentityTable
) -> None:
    identities = real_identities
    assert np.bincount(real_partition.partition).tolist() == [162_770, 19_867, 19_962]
    assert len(np.unique(identities.identity)) == 10_177
    assert np.array_equal(real_partition.image_ids, identities.image_ids)


def _real_lines(path: Path, count: int) -> list[bytes]:
    with path.open("rb") as f:
        return [f.readline() for _ in range(count)]


def test_writers_reproduce_the_real_layouts(
    celeba_root: Path,
    real_attributes: AttributeTable,
    real_partition: PartitionTable,
    real_identities: IdentityTable,
    tmp_path: Path,
) -> None:
    """The first rows written back are byte for byte the real files' (padding, CRLF, header)."""
    n = 2000
    head = AttributeTable(real_attributes.image_ids[:n], ATTRIBUTES, real_attributes.labels[:n])
    write_attributes(tmp_path / "a.txt", head)
    written = (tmp_path / "a.txt").read_bytes().splitlines(keepends=True)
    real = _real_lines(celeba_root / "list_attr_celeba.txt", n + 2)
    assert written[0] == b"2000\r\n" and real[0] == b"202599\r\n"
    assert written[1:] == real[1:]

    ids = real_partition.image_ids[:n]
    write_partition(tmp_path / "p.txt", PartitionTable(ids, real_partition.partition[:n]))
    real_partition_head = b"".join(_real_lines(celeba_root / "list_eval_partition.txt", n))
    assert (tmp_path / "p.txt").read_bytes() == real_partition_head.rstrip(b"\n")  # no final \n

    write_identities(tmp_path / "i.txt", IdentityTable(ids, real_identities.identity[:n]))
    real_identity_head = b"".join(_real_lines(celeba_root / "identity_CelebA.txt", n))
    assert (tmp_path / "i.txt").read_bytes() == real_identity_head  # CRLF, final line ending


def _kaggle_frame(
    image_ids: np.ndarray, columns: tuple[str, ...], values: np.ndarray
) -> pd.DataFrame:
    frame = pd.DataFrame(values, columns=list(columns))
    frame.insert(0, "image_id", image_ids)
    return frame


def test_kaggle_csv_reads_like_the_real_rows(
    real_attributes: AttributeTable, real_partition: PartitionTable, tmp_path: Path
) -> None:
    """Kaggle-style CSVs written by pandas from real rows read back identically."""
    ids = real_attributes.image_ids[:KAGGLE_ROWS]
    labels = real_attributes.labels[:KAGGLE_ROWS]
    signs = labels.astype(np.int64) * 2 - 1
    _kaggle_frame(ids, ATTRIBUTES, signs).to_csv(tmp_path / "list_attr_celeba.csv", index=False)
    table = read_attributes(tmp_path / "list_attr_celeba.csv")
    assert table.names == ATTRIBUTES
    assert np.array_equal(table.image_ids, ids)
    assert np.array_equal(table.labels, labels)
    write_attributes(tmp_path / "ours.csv", table)
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "list_attr_celeba.csv").read_bytes()

    split = real_partition.partition[:KAGGLE_ROWS]
    _kaggle_frame(ids, ("partition",), split).to_csv(tmp_path / "p.csv", index=False)
    assert np.array_equal(read_partition(tmp_path / "p.csv").partition, split)

    rng = np.random.default_rng(0)
    points = rng.integers(0, 250, (KAGGLE_ROWS, 10))
    _kaggle_frame(ids, LANDMARK_COLUMNS, points).to_csv(tmp_path / "lm.csv", index=False)
    assert np.array_equal(read_landmarks(tmp_path / "lm.csv").landmarks, points.reshape(-1, 5, 2))
    boxes = rng.integers(0, 500, (KAGGLE_ROWS, 4))
    _kaggle_frame(ids, BOX_COLUMNS, boxes).to_csv(tmp_path / "bbox.csv", index=False)
    assert np.array_equal(read_boxes(tmp_path / "bbox.csv").boxes, boxes)


def test_tolerates_crlf_trailing_spaces_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "list_attr_celeba.txt"
    path.write_bytes(b"2\r\nMale Smiling \r\na.jpg  1 -1  \r\nb.jpg -1  1\r\n\r\n")
    table = read_attributes(path)
    assert table.image_ids.tolist() == ["a.jpg", "b.jpg"]
    assert table.labels.tolist() == [[1, 0], [0, 1]]


HEADER = "3\nMale Smiling\n"
MALFORMED = {
    "short row": (HEADER + "a.jpg 1 -1\nb.jpg 1\nc.jpg 1 1\n", 4, "expected 3 fields"),
    "long row": (HEADER + "a.jpg 1 -1\nb.jpg 1 1 1\nc.jpg 1 1\n", 4, "got 4"),
    "bad value": (HEADER + "a.jpg 1 -1\nb.jpg 1 0\nc.jpg 1 1\n", 4, "bad value '0' for Smiling"),
    "not a number": (HEADER + "a.jpg 1 -1\nb.jpg 1 -1\nc.jpg x 1\n", 5, "bad value 'x' for Male"),
    "wrong header": ("3\nMale Smilling\na.jpg 1 -1\n", 2, "unknown attribute name 'Smilling'"),
    "duplicate id": (HEADER + "a.jpg 1 -1\nb.jpg 1 1\na.jpg 1 1\n", 5, "duplicate image id a.jpg"),
    "empty file": ("", 1, "empty file"),
    "bad count line": ("three\nMale Smiling\na.jpg 1 -1\n", 1, "expected the number of rows"),
    "count mismatch": (HEADER + "a.jpg 1 -1\nb.jpg 1 1\n", 1, "says 3 rows, the file has 2"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_attribute_file_names_file_and_line(case: str, tmp_path: Path) -> None:
    text, line, reason = MALFORMED[case]
    path = tmp_path / "list_attr_celeba.txt"
    path.write_text(text)
    with pytest.raises(AnnotationError, match=reason) as caught:
        read_attributes(path)
    assert caught.value.path == path
    assert caught.value.line == line
    assert str(caught.value).startswith(f"list_attr_celeba.txt:{line}: ")


MALFORMED_OTHERS: list[tuple[str, str, Callable[[Path], object], int, str]] = [
    ("list_eval_partition.txt", "a.jpg 0\nb.jpg 3\n", read_partition, 2, "expected 0, 1 or 2"),
    ("list_eval_partition.txt", "a.jpg 0\nb.jpg 1.5\n", read_partition, 2, "bad value '1.5'"),
    ("identity_CelebA.txt", "a.jpg 12\na.jpg 13\n", read_identities, 2, "duplicate image id"),
    ("identity_CelebA.txt", "a.jpg 12\nb.jpg\n", read_identities, 2, "expected 2 fields"),
    ("list_eval_partition.csv", "image_id,split\na.jpg,0\n", read_partition, 1, "expected header"),
    ("list_attr_celeba.csv", "id,Male\na.jpg,1\n", read_attributes, 1, "starting with 'image_id'"),
    ("list_attr_celeba.csv", "image_id,Male\na.jpg,1\nb.jpg,2\n", read_attributes, 3, "'2'"),
    (
        "list_landmarks_align_celeba.txt",
        "1\nlefteye_x lefteye_y\na.jpg 1 2\n",
        read_landmarks,
        2,
        "expected header",
    ),
    (
        "list_bbox_celeba.txt",
        "1\nimage_id x_1 y_1 width height\na.jpg 1 2 -3 4\n",
        read_boxes,
        3,
        "bad value '-3' for width",
    ),
    ("list_bbox_celeba.csv", "", read_boxes, 1, "empty file"),
]


@pytest.mark.parametrize(("name", "text", "reader", "line", "reason"), MALFORMED_OTHERS)
def test_malformed_other_files_name_file_and_line(
    name: str, text: str, reader: Callable[[Path], object], line: int, reason: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(AnnotationError, match=reason) as caught:
        reader(path)
    assert str(caught.value).startswith(f"{name}:{line}: ")


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected .txt or .csv"):
        read_partition(tmp_path / "list_eval_partition.json")


def _random_tables(n: int = 50) -> dict[str, tuple[object, Callable, Callable, str]]:
    rng = np.random.default_rng(1)
    ids = np.array([f"{i:06d}.jpg" for i in rng.permutation(1000)[:n] + 1])
    names = tuple(rng.permutation(ATTRIBUTES)[:7])
    points = (rng.random((n, 5, 2)) * 300).astype(np.float32)
    points[::3] = np.round(points[::3])  # whole and fractional coordinates in one file
    return {
        "attributes": (
            AttributeTable(ids, names, rng.integers(0, 2, (n, 7))),
            write_attributes,
            read_attributes,
            "labels",
        ),
        "partition": (
            PartitionTable(ids, rng.integers(0, 3, n)),
            write_partition,
            read_partition,
            "partition",
        ),
        "identity": (
            IdentityTable(ids, rng.integers(1, 10_178, n)),
            write_identities,
            read_identities,
            "identity",
        ),
        "landmarks": (LandmarkTable(ids, points), write_landmarks, read_landmarks, "landmarks"),
        "boxes": (
            BoxTable(ids, rng.integers(0, 2000, (n, 4))),
            write_boxes,
            read_boxes,
            "boxes",
        ),
    }


@pytest.mark.parametrize("suffix", [".txt", ".csv"])
@pytest.mark.parametrize("kind", ["attributes", "partition", "identity", "landmarks", "boxes"])
def test_every_writer_round_trips_exactly(kind: str, suffix: str, tmp_path: Path) -> None:
    table, write, read, column = _random_tables()[kind]
    path = tmp_path / f"{kind}{suffix}"
    write(path, table)
    back = read(path)
    assert np.array_equal(back.image_ids, table.image_ids)  # type: ignore[attr-defined]
    assert np.array_equal(getattr(back, column), getattr(table, column))
    assert getattr(back, column).dtype == getattr(table, column).dtype
    if kind == "attributes":
        assert back.names == table.names  # type: ignore[attr-defined]


def test_writers_refuse_values_the_format_cannot_hold(tmp_path: Path) -> None:
    ids = np.array(["a.jpg", "b.jpg"])
    with pytest.raises(ValueError, match="b.jpg partition=3"):
        write_partition(tmp_path / "p.txt", PartitionTable(ids, [0, 3]))
    with pytest.raises(ValueError, match="not unique"):
        write_identities(tmp_path / "i.txt", IdentityTable(np.array(["a.jpg", "a.jpg"]), [1, 2]))
    with pytest.raises(ValueError, match="'my photo.jpg' is empty or holds a separator"):
        write_partition(tmp_path / "p.csv", PartitionTable(np.array(["my photo.jpg"]), [0]))
    points = np.zeros((2, 5, 2))
    points[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="nose_x"):
        write_landmarks(tmp_path / "l.txt", LandmarkTable(ids, points))


def test_tables_check_their_shapes() -> None:
    with pytest.raises(ValueError, match=r"labels must have shape \(2, 1\)"):
        AttributeTable(np.array(["a.jpg", "b.jpg"]), ("Male",), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="0 or 1"):
        AttributeTable(np.array(["a.jpg"]), ("Male",), np.array([[2]]))


def test_header_only_file_is_an_empty_table(tmp_path: Path) -> None:
    empty = BoxTable(np.array([], dtype=str), np.zeros((0, 4)))
    write_boxes(tmp_path / "list_bbox_celeba.txt", empty)
    assert (tmp_path / "list_bbox_celeba.txt").read_text() == "0\nimage_id x_1 y_1 width height\n"
    assert read_boxes(tmp_path / "list_bbox_celeba.txt").boxes.shape == (0, 4)


def test_binary_file_is_an_annotation_error(tmp_path: Path) -> None:
    path = tmp_path / "identity_CelebA.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    with pytest.raises(AnnotationError, match=r"identity_CelebA.txt: not UTF-8 text"):
        read_identities(path)

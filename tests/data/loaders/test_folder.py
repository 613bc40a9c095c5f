"""A folder of images with labels.csv (and schema.json): typed columns, blank cells as missing
labels, the split column or a generated partition, and every malformed input named by line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from faceattr.data.formats import AnnotationError
from faceattr.data.loaders import check_dataset, detect_format, load_dataset

HEADER = "image,wearing_mask,Smiling,split"
ROWS = [
    "a.jpg,1,yes,train",
    "sub/b.jpg,0,NO,train",
    "./sub/c.jpg,,Yes,val",
    "",
    "d.jpg,1,,test",
]


def write_folder(
    root: Path,
    rows: list[str],
    header: str = HEADER,
    schema: list[dict[str, Any]] | None = None,
    csv_name: str = "labels.csv",
) -> Path:
    """``root`` with ``csv_name`` (header + rows), an optional ``schema.json`` and a tiny image for
    every path the CSV names inside the folder."""
    root.mkdir(parents=True, exist_ok=True)
    (root / csv_name).write_text("\n".join([header, *rows]) + "\n")
    if schema is not None:
        (root / "schema.json").write_text(json.dumps(schema))
    for row in rows:
        image = row.split(",")[0].strip()
        if image and ".." not in image and not image.startswith("/"):
            (root / image).parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8)).save(root / image, format="JPEG")
    return root


def test_labels_split_and_blank_cells(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "masks", ROWS)
    assert detect_format(root) == "folder"
    data = load_dataset(root)
    assert data.format == "folder" and data.image_dir == root and data.sizes is None
    assert data.image_ids.tolist() == ["a.jpg", "sub/b.jpg", "sub/c.jpg", "d.jpg"]
    assert data.attribute_names == ("wearing_mask", "Smiling")
    expected = np.array([[1, 1], [0, 0], [np.nan, 1], [1, np.nan]], np.float32)
    assert np.array_equal(data.labels, expected, equal_nan=True)
    assert data.partition is not None and data.partition.tolist() == [0, 0, 1, 2]
    assert data.partition_source == "the 'split' column of labels.csv"
    assert data.identity is None and data.present.all()
    report = check_dataset(root)
    assert report.ok and report.missing_labels == 2


def test_schema_declares_categorical_and_numeric_columns(tmp_path: Path) -> None:
    schema: list[dict[str, Any]] = [
        {"name": "hair", "kind": "categorical", "classes": ["black", "blond", "grey"]},
        {"name": "age", "kind": "numeric", "low": 0, "high": 120, "unit": "years"},
    ]
    rows = ["a.jpg,grey,31.5,-1", "b.jpg,,7,1", "c.jpg,black,,1"]
    root = write_folder(tmp_path / "f", rows, header="image,hair,age,glasses", schema=schema)
    data = load_dataset(root)
    assert data.attribute_names == ("hair", "age", "glasses")
    assert data.schema["age"].unit == "years" and data.schema["glasses"].kind == "binary"
    expected = np.array([[2, 31.5, 0], [np.nan, 7, 1], [0, np.nan, 1]], np.float32)
    assert np.array_equal(data.labels, expected, equal_nan=True)
    assert data.partition is not None and data.partition_source.startswith("generated random")
    assert "schema.json (JSON)" in check_dataset(root).files["schema"]


def test_a_missing_image_is_counted_not_an_error(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "f", ROWS)
    (root / "sub" / "b.jpg").unlink()
    data = load_dataset(root)
    assert data.present.tolist() == [True, False, True, True]


def test_the_only_csv_in_the_root_is_read(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "f", ROWS, csv_name="attributes.csv")
    assert detect_format(root) == "folder"
    assert len(load_dataset(root)) == 4


def test_identity_column_gives_an_identity_disjoint_partition(tmp_path: Path) -> None:
    rows = [f"img{i:03d}.jpg,{i % 2},person{i // 4}" for i in range(80)] + ["x.jpg,1,"]
    root = write_folder(tmp_path / "f", rows, header="image,Smiling,identity")
    data = load_dataset(root, split_seed=5)
    assert data.identity is not None and data.identity[-1] == -1
    assert len(np.unique(data.identity[:-1])) == 20
    assert data.partition_source.startswith("generated identity-disjoint, seed 5")
    report = check_dataset(root, split_seed=5)
    assert report.identity_disjoint is True
    assert report.split_counts["train"] >= 60
    again = load_dataset(root, split_seed=5)
    assert "read from" in again.partition_source
    assert data.partition is not None and again.partition is not None
    assert np.array_equal(data.partition, again.partition)
    other = load_dataset(root, split_seed=6)
    assert other.partition is not None and not np.array_equal(data.partition, other.partition)


def test_numeric_identities_are_kept(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "f", ["a.jpg,1,17", "b.jpg,0,4"], header="image,Male,identity")
    data = load_dataset(root)
    assert data.identity is not None and data.identity.tolist() == [17, 4]


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        ("path,Smiling", ["a.jpg,1"], "labels.csv:1: no 'image' column"),
        ("image,Smiling,Smiling", ["a.jpg,1,0"], "labels.csv:1: column 'Smiling' is named twice"),
        ("image,Smiling", ["a.jpg,1", "b.jpg,2"], "labels.csv:3: column 'Smiling': '2' is not"),
        (
            "image,Smiling",
            ["a.jpg,1", "b.jpg,-1", "c.jpg,0"],
            "labels.csv:3: column 'Smiling': '-1'",
        ),
        ("image,Smiling", ["a.jpg,yes", "b.jpg,1"], "labels.csv:3: column 'Smiling': '1'"),
        ("image,age", ["a.jpg,34"], "labels.csv:2: .*declare its kind in schema.json"),
        ("image,Smiling,split", ["a.jpg,1,valid"], "labels.csv:2: unknown split 'valid'"),
        (
            "image,Smiling",
            ["a.jpg,1", "", "./a.jpg,0"],
            "labels.csv:4: image a.jpg is listed twice",
        ),
        ("image,Smiling", ["../a.jpg,1"], "labels.csv:2: image path '../a.jpg' is outside"),
        ("image,Smiling", ["/etc/a.jpg,1"], "labels.csv:2: image path '/etc/a.jpg' is outside"),
        ("image,Smiling", ["C:\\a.jpg,1"], "labels.csv:2: image path 'C:.*a.jpg' is outside"),
        ("image,Smiling", [",1"], "labels.csv:2: blank 'image' cell"),
        ("image,wearing mask", ["a.jpg,1"], "labels.csv:1: attribute name 'wearing mask'"),
        ("image,Smiling", ["a.jpg,1,0"], "labels.csv:2: 3 fields, but the header has 2"),
    ],
)
def test_malformed_csv_names_file_and_line(
    tmp_path: Path, header: str, rows: list[str], message: str
) -> None:
    root = write_folder(tmp_path / "f", rows, header=header)
    with pytest.raises(AnnotationError, match=message):
        load_dataset(root, format="folder")
    report = check_dataset(root, format="folder")
    assert not report.ok and report.errors[0].startswith("labels.csv")


@pytest.mark.parametrize(
    ("schema", "rows", "message"),
    [
        (
            [{"name": "hair", "kind": "categorical", "classes": ["black", "grey"]}],
            ["a.jpg,grey", "b.jpg,red"],
            "labels.csv:3: column 'hair': 'red' is not one of its classes",
        ),
        (
            [{"name": "hair", "kind": "numeric", "low": 0, "high": 10}],
            ["a.jpg,3", "b.jpg,11"],
            "labels.csv:3: column 'hair': '11' is not a number in 0..10",
        ),
        (
            [{"name": "hair", "kind": "numeric"}],
            ["a.jpg,three"],
            "labels.csv:2: column 'hair': 'three' is not a number",
        ),
        (
            [{"name": "beard", "kind": "binary"}],
            ["a.jpg,1"],
            "labels.csv:1: no column 'beard', which schema.json declares",
        ),
        ([{"name": "hair", "kind": "colour"}], ["a.jpg,1"], "schema.json: hair: unknown kind"),
        ([{"kind": "binary"}], ["a.jpg,1"], "schema.json: an attribute lacks 'name'"),
    ],
)
def test_schema_violations_name_file_and_line(
    tmp_path: Path, schema: list[dict[str, Any]], rows: list[str], message: str
) -> None:
    root = write_folder(tmp_path / "f", rows, header="image,hair", schema=schema)
    with pytest.raises(AnnotationError, match=message):
        load_dataset(root)
    assert not check_dataset(root).ok


def test_a_schema_file_that_is_not_json(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "f", ["a.jpg,1"], header="image,Smiling")
    (root / "schema.json").write_text("[{'name': 'Smiling'}]")
    with pytest.raises(AnnotationError, match="schema.json:1: not JSON"):
        load_dataset(root)

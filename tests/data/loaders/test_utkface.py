"""UTKFace: labels parsed from the real sample's file names, malformed and out-of-range names
listed as skipped, and the seeded random partition."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from faceattr.data.loaders import check_dataset, detect_format, load_dataset
from faceattr.data.record import annotation_cache_dir

MALFORMED = {
    "24_0_1_20170116220224657 .jpg.chip.jpg",  # a space
    "39_1_20170116174525125.jpg.chip.jpg",  # no race
    "55_0_0_20170116232725357jpg.chip.jpg",  # no dot
    "61_1_20170109142408075.jpg.chip.jpg",  # no race
    "61_1_20170109150557335.jpg.chip.jpg",  # no race
}


def touch(folder: Path, names: list[str]) -> Path:
    """Empty files ``names`` in ``folder`` (the loader reads names, never pixels)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


def test_real_sample_labels_come_from_the_names(utkface_root: Path) -> None:
    data = load_dataset(utkface_root)
    assert data.format == "utkface" and data.image_set == "wild"
    assert len(data) == 593 and data.present.all()
    assert data.attribute_names == ("Male", "age", "race")
    assert [a.kind for a in data.schema.attributes] == ["binary", "numeric", "categorical"]
    assert data.schema["race"].classes == ("White", "Black", "Asian", "Indian", "Others")
    assert data.identity is None
    assert data.sizes is not None and (data.sizes == (200, 200)).all()
    for i in (0, 100, 592):
        age, gender, race = (int(v) for v in str(data.image_ids[i]).split("_")[:3])
        assert data.labels[i].tolist() == [float(gender == 0), float(age), float(race)]
    assert data.image_path(0).is_file()


def test_real_malformed_names_are_skipped_by_name(utkface_root: Path) -> None:
    report = check_dataset(utkface_root)
    assert report.ok, report.errors
    on_disk = {p.name for p in (utkface_root / "UTKFace").iterdir()}
    by_hand = {n for n in on_disk if not re.fullmatch(r"\d+_[01]_[0-4]_\d+\.jpg\.chip\.jpg", n)}
    assert by_hand == MALFORMED
    assert {s.split(" (")[0] for s in report.skipped} == MALFORMED
    assert report.rows == len(on_disk) - 5


def test_out_of_range_values_are_skipped(tmp_path: Path) -> None:
    good = ["116_1_4_1.jpg.chip.jpg", "0_0_0_2.jpg.chip.jpg"]
    bad = {
        "117_0_0_3.jpg.chip.jpg": "age over 116",
        "30_2_0_4.jpg.chip.jpg": "gender not 0 or 1",
        "30_0_5_5.jpg.chip.jpg": "race not 0-4",
        "30_0_x_6.jpg.chip.jpg": "does not parse",
    }
    root = touch(tmp_path / "utk" / "UTKFace", [*good, *bad, "notes.txt"]).parent
    report = check_dataset(root)
    assert report.ok and report.rows == 2
    assert len(report.skipped) == 4
    for name, reason in bad.items():
        assert any(s.startswith(name) and reason in s for s in report.skipped), name
    data = load_dataset(root)
    assert data.labels.tolist() == [[1.0, 0.0, 0.0], [0.0, 116.0, 4.0]]


def test_files_directly_in_the_root(tmp_path: Path) -> None:
    root = touch(
        tmp_path / "crops", [f"{20 + i}_{i % 2}_{i % 5}_{i}.jpg.chip.jpg" for i in range(20)]
    )
    assert detect_format(root) == "utkface"
    data = load_dataset(root)
    assert data.image_dir == root and len(data) == 20


def test_random_partition_is_seeded_and_saved(utkface_root: Path) -> None:
    first = load_dataset(utkface_root)
    assert first.partition is not None
    assert np.bincount(first.partition).tolist() == [415, 59, 119]  # 0.7, 0.1, 0.2 of 593
    assert first.partition_source.startswith("generated random, seed 0")
    assert (annotation_cache_dir(utkface_root) / "utkface_partition_seed0.txt").is_file()
    again = load_dataset(utkface_root)
    assert "read from" in again.partition_source
    assert again.partition is not None and np.array_equal(first.partition, again.partition)
    other = load_dataset(utkface_root, split_seed=1)
    assert other.partition is not None and not np.array_equal(first.partition, other.partition)


def test_an_empty_folder_is_an_error(tmp_path: Path) -> None:
    root = touch(tmp_path / "utk" / "UTKFace", ["readme.txt"]).parent
    report = check_dataset(root)
    assert not report.ok and "no UTKFace image names" in report.errors[0]
    with pytest.raises(ValueError, match="no UTKFace image names"):
        load_dataset(root)

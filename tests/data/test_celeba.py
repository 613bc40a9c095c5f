"""Loading and checking CelebA folders: the real partial sample, the fake one, broken ones."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from faceattr.attributes import ATTRIBUTES
from faceattr.data.formats import (
    AnnotationError,
    PartitionTable,
    read_attributes,
    read_boxes,
    read_landmarks,
    read_partition,
    write_attributes,
    write_boxes,
    write_landmarks,
    write_partition,
)
from faceattr.data.loaders import check_dataset, load_dataset
from faceattr.data.record import DatasetError, FaceDataset, annotation_cache_dir


def test_real_sample_loads_with_its_missing_images(real_celeba: FaceDataset) -> None:
    data = real_celeba
    assert len(data) == 202_599
    assert data.attribute_names == ATTRIBUTES
    assert data.labels.shape == (202_599, 40)
    assert data.partition is not None and data.identity is not None
    assert np.bincount(data.partition).tolist() == [162_770, 19_867, 19_962]
    assert len(np.unique(data.identity)) == 10_177
    assert data.landmarks is None and data.boxes is None  # not part of the sample
    assert int(data.present.sum()) == 20_000
    sizes = [len(data.split_indices(s)) for s in ("train", "val", "test", "all")]
    assert sizes == [16_000, 2_000, 2_000, 20_000]
    assert len(data.split_indices(["val", "test"])) == 4_000
    first = data.split_indices("train")[0]
    assert data.image_path(int(first)).is_file()


def test_split_indices_refuses_unknown_split(real_celeba: FaceDataset) -> None:
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        real_celeba.split_indices("valid")


def test_fake_folder_loads_both_image_sets(fake_celeba: Path) -> None:
    align = load_dataset(fake_celeba)
    wild = load_dataset(fake_celeba, image_set="wild")
    assert align.image_dir.name == "img_align_celeba" and wild.image_dir.name == "img_celeba"
    assert align.landmarks is not None and wild.landmarks is not None
    assert align.boxes is not None and wild.boxes is not None
    assert align.landmarks.shape == (12, 5, 2) and align.boxes.shape == (12, 4)
    offset = wild.landmarks - align.landmarks  # the wild face is the aligned one, shifted
    assert np.allclose(offset, offset[:, :1, :])
    assert np.allclose(wild.boxes[:, :2] - align.boxes[:, :2], offset[:, 0, :])
    assert align.present.all()
    assert align.split_indices("train").tolist() == [0, 1, 2, 3, 4, 5]


def test_tables_are_joined_on_image_ids(fake_celeba: Path) -> None:
    """Files in another row order, or lacking rows, land on the attribute file's rows."""
    ids = read_attributes(fake_celeba / "list_attr_celeba.txt").image_ids
    landmarks = read_landmarks(fake_celeba / "list_landmarks_align_celeba.txt")
    order = np.arange(len(ids))[::-1][:-2]  # reversed, without the first two images
    shuffled = type(landmarks)(landmarks.image_ids[order], landmarks.landmarks[order])
    write_landmarks(fake_celeba / "list_landmarks_align_celeba.txt", shuffled)
    data = load_dataset(fake_celeba)
    assert data.landmarks is not None
    assert np.isnan(data.landmarks[:2]).all()
    assert np.array_equal(data.landmarks[2:], landmarks.landmarks[2:])
    report = check_dataset(fake_celeba)
    assert report.ok
    assert any("has no row for 2 of 12 present images" in w for w in report.warnings)


def test_kaggle_csv_folder_loads_like_the_text_one(fake_celeba: Path, tmp_path: Path) -> None:
    kaggle = tmp_path / "kaggle"
    (kaggle / "img_align_celeba").mkdir(parents=True)
    shutil.copytree(
        fake_celeba / "img_align_celeba", kaggle / "img_align_celeba" / "img_align_celeba"
    )
    write_attributes(
        kaggle / "list_attr_celeba.csv", read_attributes(fake_celeba / "list_attr_celeba.txt")
    )
    write_partition(
        kaggle / "list_eval_partition.csv", read_partition(fake_celeba / "list_eval_partition.txt")
    )
    write_landmarks(
        kaggle / "list_landmarks_align_celeba.csv",
        read_landmarks(fake_celeba / "list_landmarks_align_celeba.txt"),
    )
    text, csv = load_dataset(fake_celeba), load_dataset(kaggle)
    assert csv.image_dir == kaggle / "img_align_celeba" / "img_align_celeba"  # Kaggle nests it
    assert np.array_equal(csv.labels, text.labels)
    assert np.array_equal(csv.partition, text.partition)  # type: ignore[arg-type]
    assert np.array_equal(csv.landmarks, text.landmarks)  # type: ignore[arg-type]
    assert csv.identity is None and csv.present.all()
    assert "(CSV)" in check_dataset(kaggle).files["attributes"]


def test_official_anno_and_eval_subfolders(fake_celeba: Path) -> None:
    (fake_celeba / "Anno").mkdir()
    (fake_celeba / "Eval").mkdir()
    (fake_celeba / "list_attr_celeba.txt").rename(fake_celeba / "Anno" / "list_attr_celeba.txt")
    (fake_celeba / "list_eval_partition.txt").rename(
        fake_celeba / "Eval" / "list_eval_partition.txt"
    )
    data = load_dataset(fake_celeba)
    assert data.files["attributes"].parent.name == "Anno"
    assert data.files["partition"].parent.name == "Eval"


def test_annotation_cache_dir_names_the_resolved_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "celeba"
    digest = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:8]
    assert annotation_cache_dir(root) == tmp_path / "cache" / "annotations" / f"celeba-{digest}"
    assert annotation_cache_dir(tmp_path / "other" / "celeba") != annotation_cache_dir(root)


def test_annotations_found_in_dirs_then_cache(
    fake_celeba: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    cache = annotation_cache_dir(fake_celeba)
    cache.mkdir(parents=True)
    extra = tmp_path / "extra"
    extra.mkdir()
    (fake_celeba / "list_landmarks_align_celeba.txt").rename(
        cache / "list_landmarks_align_celeba.txt"
    )
    boxes = read_boxes(fake_celeba / "list_bbox_align_celeba.txt")
    (fake_celeba / "list_bbox_align_celeba.txt").rename(cache / "list_bbox_align_celeba.txt")
    write_boxes(extra / "list_bbox_align_celeba.csv", type(boxes)(boxes.image_ids, boxes.boxes + 1))
    data = load_dataset(fake_celeba, annotation_dirs=[extra])
    assert data.files["landmarks"].parent == cache
    assert data.files["boxes"] == extra / "list_bbox_align_celeba.csv"  # dirs before the cache
    assert np.array_equal(data.boxes, boxes.boxes + 1)  # type: ignore[arg-type]


def test_missing_attribute_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="list_attr_celeba"):
        load_dataset(tmp_path, format="celeba")
    report = check_dataset(tmp_path, format="celeba")
    assert not report.ok and "no list_attr_celeba" in report.errors[0]
    with pytest.raises(DatasetError, match="no known dataset layout found; pass --format"):
        load_dataset(tmp_path)


def test_malformed_file_fails_load_and_is_listed_by_check(fake_celeba: Path) -> None:
    path = fake_celeba / "list_attr_celeba.txt"
    lines = path.read_text().splitlines(keepends=True)
    lines[4] = lines[4].rsplit(" ", 2)[0] + "\r\n"  # line 5: two values short
    path.write_text("".join(lines))
    with pytest.raises(AnnotationError, match="list_attr_celeba.txt:5: expected 41 fields"):
        load_dataset(fake_celeba)
    report = check_dataset(fake_celeba)
    assert not report.ok
    assert report.errors == [
        "list_attr_celeba.txt:5: expected 41 fields (image_id + 40 values), got 39"
    ]


def test_missing_image_is_a_warning_naming_file_and_line(
    fake_celeba: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (fake_celeba / "img_align_celeba" / "000005.jpg").unlink()
    report = check_dataset(fake_celeba)
    assert report.ok
    assert (report.present, report.missing) == (11, 1)
    assert report.present_split_counts == {"train": 5, "val": 3, "test": 3}
    warning = next(w for w in report.warnings if "missing" in w)
    assert "1 of 12 annotated images" in warning
    assert "000005.jpg at list_attr_celeba.txt:7" in warning
    with caplog.at_level(logging.WARNING, logger="faceattr.data.loaders"):
        assert load_dataset(fake_celeba).split_indices("train").tolist() == [0, 1, 2, 3, 5]
    assert "1 of 12 annotated images are missing" in caplog.text


def test_disagreeing_ids_are_errors_naming_both_files(fake_celeba: Path) -> None:
    partition = read_partition(fake_celeba / "list_eval_partition.txt")
    ids = partition.image_ids.copy()
    ids[3] = "999999.jpg"
    write_partition(
        fake_celeba / "list_eval_partition.txt", PartitionTable(ids, partition.partition)
    )
    report = check_dataset(fake_celeba)
    assert not report.ok
    assert any(
        "list_eval_partition.txt names 1 images that list_attr_celeba.txt lacks (999999.jpg)" in e
        for e in report.errors
    )
    assert any(
        "list_eval_partition.txt lacks 1 images" in e and "000004.jpg" in e for e in report.errors
    )


def test_partition_that_shares_identities_is_reported(fake_celeba: Path) -> None:
    partition = read_partition(fake_celeba / "list_eval_partition.txt")
    split = partition.partition.copy()
    split[0] = 2  # one image of identity 1 moves from train to test
    write_partition(
        fake_celeba / "list_eval_partition.txt", PartitionTable(partition.image_ids, split)
    )
    report = check_dataset(fake_celeba)
    assert report.ok and report.identity_disjoint is False
    assert any("1 identities appear in more than one split (1)" in w for w in report.warnings)
    assert "identity-disjoint partition: NO" in report.format_text()


def test_unannotated_and_corrupt_images_are_warnings(fake_celeba: Path) -> None:
    (fake_celeba / "img_align_celeba" / "000002.jpg").write_bytes(b"not a jpeg")
    shutil.copy(
        fake_celeba / "img_align_celeba" / "000001.jpg", fake_celeba / "img_align_celeba" / "x.jpg"
    )
    report = check_dataset(fake_celeba, verify=True)
    assert report.ok
    assert any(
        "1 files in img_align_celeba/ have no annotations (x.jpg)" in w for w in report.warnings
    )
    assert any("unreadable image" in w and "000002.jpg" in w for w in report.warnings)

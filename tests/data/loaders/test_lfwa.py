"""LFW with LFWA's labels: the real sample against its .mat read by hand, the generated
identity-disjoint partition, and broken .mat files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from faceattr.attributes import ATTRIBUTES
from faceattr.data.formats import AnnotationError
from faceattr.data.loaders import check_dataset, detect_format, load_dataset
from faceattr.data.record import annotation_cache_dir


def cells(values: list[str]) -> np.ndarray:
    """A 1 x N MATLAB cell array of strings, as LFWA's file holds them."""
    out = np.empty((1, len(values)), dtype=object)
    out[0, :] = values
    return out


def write_mat(root: Path, **variables: object) -> Path:
    """``root/lfw_att_40.mat`` holding ``variables``."""
    root.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "lfw_att_40.mat", variables)
    return root


def small_mat(root: Path, **changes: object) -> Path:
    """Three labelled images of two people, with ``changes`` to the variables (None drops one)."""
    variables: dict[str, object] = {
        "AttrName": cells(list(ATTRIBUTES)),
        "label": np.eye(3, len(ATTRIBUTES), dtype=np.uint8),
        "name": cells(["Ann_A\\Ann_A_0001.jpg", "Ann_A\\Ann_A_0002.jpg", "Bob_B\\Bob_B_0001.jpg"]),
    }
    variables.update(changes)
    return write_mat(root, **{k: v for k, v in variables.items() if v is not None})


def test_real_sample_matches_the_mat_file(lfw_root: Path) -> None:
    data = load_dataset(lfw_root)
    mat = scipy.io.loadmat(lfw_root / "lfw_att_40.mat")
    assert data.format == "lfwa" and data.image_set == "wild"
    assert len(data) == 13_143 and data.labels.shape == (13_143, 40)
    assert data.attribute_names == tuple(str(a[0]) for a in mat["AttrName"][0]) == ATTRIBUTES
    for row in (0, 4_321, 13_142):  # the .mat's rows, their ids rewritten with a forward slash
        raw = str(mat["name"][0, row][0])
        i = int(np.flatnonzero(data.image_ids == raw.replace("\\", "/"))[0])
        assert np.array_equal(data.labels[i], mat["label"][row].astype(np.float32))
    assert int(data.present.sum()) == 386  # 392 images, 6 of them without labels
    present = data.image_ids[data.present]
    assert all(i.startswith("Ja") for i in present.tolist())
    assert data.image_path(int(np.flatnonzero(data.present)[0])).is_file()
    assert data.sizes is not None and (data.sizes == (250, 250)).all()


def test_people_are_identities(lfw_root: Path) -> None:
    data = load_dataset(lfw_root)
    assert data.identity is not None
    people = np.array([i.split("/")[0] for i in data.image_ids.tolist()])
    assert len(np.unique(data.identity)) == len(np.unique(people)) == 5_721
    bush = data.identity[people == "George_W_Bush"]
    assert len(bush) > 500 and (bush == bush[0]).all()
    assert not (data.identity[people != "George_W_Bush"] == bush[0]).any()


def test_generated_partition_is_identity_disjoint_in_lfwa_sizes(lfw_root: Path) -> None:
    report = check_dataset(lfw_root)
    assert report.ok, report.errors
    assert report.identity_disjoint is True
    counts = report.split_counts
    assert sum(counts.values()) == 13_143
    assert abs(counts["test"] - 6_880) < 100  # whole people: close to, not exactly, the shares
    assert abs(counts["val"] - 626) < 60
    assert report.partition_source.startswith("generated identity-disjoint, seed 0")
    assert any("6 images in lfw-deepfunneled/ have no labels" in w for w in report.warnings)


def test_partition_is_seeded_saved_and_read_back(lfw_root: Path) -> None:
    first = load_dataset(lfw_root, split_seed=3)
    saved = annotation_cache_dir(lfw_root) / "lfwa_partition_seed3.txt"
    assert saved.is_file() and "saved to" in first.partition_source
    again = load_dataset(lfw_root, split_seed=3)
    assert "read from" in again.partition_source
    assert first.partition is not None and again.partition is not None
    assert np.array_equal(first.partition, again.partition)
    other = load_dataset(lfw_root, split_seed=4)
    assert other.partition is not None
    assert not np.array_equal(first.partition, other.partition)


def test_small_folder_with_images(tmp_path: Path) -> None:
    root = small_mat(tmp_path / "lfw")
    for image in ("Ann_A/Ann_A_0001.jpg", "Bob_B/Bob_B_0001.jpg", "Bob_B/Bob_B_0002.jpg"):
        (root / "lfw_funneled" / image).parent.mkdir(parents=True, exist_ok=True)
        (root / "lfw_funneled" / image).write_bytes(b"")
    assert detect_format(root) == "lfwa"
    data = load_dataset(root)
    assert data.image_dir == root / "lfw_funneled"
    assert data.image_ids.tolist() == [
        "Ann_A/Ann_A_0001.jpg",
        "Ann_A/Ann_A_0002.jpg",
        "Bob_B/Bob_B_0001.jpg",
    ]
    assert data.present.tolist() == [True, False, True]
    assert data.identity is not None and data.identity.tolist() == [0, 0, 1]
    assert data.labels[1].tolist() == [0.0, 1.0] + [0.0] * 38


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"label": None}, "no variable 'label'"),
        ({"AttrName": None}, "no variable 'AttrName'"),
        ({"label": np.ones((2, 40), np.uint8)}, r"'label' has shape \(2, 40\), expected \(3, 40\)"),
        ({"AttrName": cells(list(ATTRIBUTES[:39]))}, r"'label' has shape \(3, 40\), expected"),
        ({"label": np.full((3, 40), 2, np.uint8)}, "'label' must hold 0 or 1, got 2 at row 1"),
        ({"AttrName": cells(["Smiling", *ATTRIBUTES[1:39], "Smiling"])}, "'AttrName'.*twice"),
        ({"name": np.ones((3, 3))}, "'name' must be 1 x N strings"),
        ({"name": np.ones((1, 3))}, "'name' must be 1 x N strings, got float64"),
        ({"name": cells(["Ann_A\\Ann_A_0001.jpg", "x", "x"])}, "'name' lists x twice"),
    ],
)
def test_malformed_mat_names_file_and_variable(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    root = small_mat(tmp_path / "lfw", **changes)
    with pytest.raises(AnnotationError, match=f"lfw_att_40.mat: .*{message}"):
        load_dataset(root)
    report = check_dataset(root)
    assert not report.ok and "lfw_att_40.mat" in report.errors[0]


V73_HEADER = b"MATLAB 7.3 MAT-file".ljust(124) + b"\x00\x02IM" + bytes(128)


@pytest.mark.parametrize(
    "content",
    [b"", b"Aaron_Eckhart 1 0 1\n", b"x" * 500, V73_HEADER, "truncated"],
    ids=["empty", "short text", "long text", "v7.3 (HDF5)", "truncated"],
)
def test_a_file_scipy_cannot_read(tmp_path: Path, lfw_root: Path, content: bytes | str) -> None:
    if content == "truncated":
        content = (lfw_root / "lfw_att_40.mat").read_bytes()[:3000]
    assert isinstance(content, bytes)
    (tmp_path / "lfw_att_40.mat").write_bytes(content)
    with pytest.raises(AnnotationError, match="lfw_att_40.mat: not a MATLAB v5 file"):
        load_dataset(tmp_path)
    assert "not a MATLAB v5 file" in check_dataset(tmp_path).errors[0]

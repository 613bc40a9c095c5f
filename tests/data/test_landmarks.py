"""``faceattr data landmarks``: landmark and box files from YuNet, fallbacks, resuming, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.data.formats import read_boxes, read_landmarks
from faceattr.data.landmarks import (
    UNREADABLE,
    FaceColumns,
    default_output_dir,
    detect_landmarks,
    eye_distances,
    fill_fallbacks,
    output_paths,
)
from faceattr.data.loaders import DatasetSource
from faceattr.data.record import annotation_cache_dir
from faceattr.geometry.frame import BOX_LANDMARK_LAYOUT
from faceattr.geometry.frame import MEAN_ALIGNED_BOX as CANONICAL_ALIGNED_BOX
from faceattr.geometry.frame import MEAN_ALIGNED_LANDMARKS as CANONICAL_ALIGNED_LANDMARKS


def test_cli_on_30_real_images_writes_files_the_readers_parse(
    celeba_root: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, ["data", "landmarks", str(celeba_root), "--limit", "30", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "face found in 30 (100.00%)" in result.output
    marks = read_landmarks(tmp_path / "list_landmarks_align_celeba.txt")
    boxes = read_boxes(tmp_path / "list_bbox_align_celeba.txt")
    expected = sorted(p.name for p in (celeba_root / "img_align_celeba").glob("*.jpg"))[:30]
    assert marks.image_ids.tolist() == expected == boxes.image_ids.tolist()
    distances = eye_distances(marks.landmarks, np.tile([218, 178], (30, 1)))
    assert np.median(distances) < 6.0
    x, y, w, h = boxes.boxes.T
    assert ((x < marks.landmarks[:, :, 0].T) & (x + w > marks.landmarks[:, :, 0].T)).all()
    assert ((y < marks.landmarks[:, :, 1].T) & (y + h > marks.landmarks[:, :, 1].T)).all()
    summary = json.loads((tmp_path / "list_landmarks_align_celeba.summary.json").read_text())
    assert summary["rows"] == summary["found"] == 30
    assert summary["absent"] == 202_599 - 20_000
    assert summary["detector"] == "yunet" and summary["eye_distance_median"] < 6.0
    assert not (tmp_path / "list_landmarks_align_celeba.partial.npz").exists()

    again = CliRunner().invoke(
        app, ["data", "landmarks", str(celeba_root), "--limit", "3", "--out", str(tmp_path)]
    )
    assert again.exit_code == 1 and "--overwrite" in again.output
    unknown = CliRunner().invoke(
        app, ["data", "landmarks", str(celeba_root), "--detector", "nope", "--out", str(tmp_path)]
    )
    assert unknown.exit_code == 1 and "available: yunet" in unknown.output


def test_resume_reuses_saved_rows(celeba_root: Path, tmp_path: Path) -> None:
    ids = np.array(sorted(p.name for p in (celeba_root / "img_align_celeba").glob("*.jpg"))[:12])
    landmark_path, _, _, partial_path = output_paths(
        tmp_path, ("list_landmarks_align_celeba", "list_bbox_align_celeba")
    )
    saved = FaceColumns.allocate(ids[:8])
    saved.faces[:] = 1
    saved.boxes[:] = (40, 60, 100, 120)
    saved.landmarks[:] = 50.0  # a value no detector gives every point: proves reuse
    saved.sizes[:] = (218, 178)
    saved.save(partial_path, "yunet", "align")

    summary = detect_landmarks(celeba_root, out=tmp_path, limit=12, flush_every=2, progress=False)
    assert summary.resumed == 8 and summary.rows == 12
    written = read_landmarks(landmark_path)
    assert written.image_ids.tolist() == ids.tolist()
    assert (written.landmarks[:8] == 50.0).all()
    assert (written.landmarks[8:] != 50.0).all()
    assert not partial_path.exists()


def test_partial_of_another_detector_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "partial.npz"
    FaceColumns.allocate(np.array(["000001.jpg"])).save(path, "other", "align")
    assert FaceColumns.load(path, "yunet", "align") is None
    loaded = FaceColumns.load(path, "other", "align")
    assert loaded is not None and loaded.image_ids.tolist() == ["000001.jpg"]


def test_fake_folder_wild_fallbacks_unreadable_and_existing_files(fake_celeba: Path) -> None:
    with pytest.raises(FileExistsError, match="overwrite"):
        detect_landmarks(
            DatasetSource(fake_celeba, image_set="wild"), progress=False
        )  # never replace official files
    images = fake_celeba / "img_celeba"
    (images / "000005.jpg").write_bytes(b"not a jpeg")
    Image.new("RGB", (320, 300), (120, 130, 140)).save(images / "000007.jpg")  # no face
    out = fake_celeba / "derived"
    summary = detect_landmarks(
        DatasetSource(fake_celeba, image_set="wild"), out=out, progress=False
    )
    assert summary.unreadable == ["000005.jpg"] and summary.rows == 11
    # The blank image, and any drawn face YuNet misses, take the folder's own box.
    assert summary.found + summary.fallbacks["dataset_box"] == 11
    assert summary.fallbacks["dataset_box"] >= 1 and summary.fallbacks["whole_image"] == 0
    assert summary.eye_distance_mean is None  # only measured on aligned images
    boxes, marks = (
        read_boxes(out / "list_bbox_celeba.txt"),
        read_landmarks(out / "list_landmarks_celeba.txt"),
    )
    assert "000005.jpg" not in boxes.image_ids
    official = read_boxes(fake_celeba / "list_bbox_celeba.txt")
    blank_box = official.boxes[official.image_ids == "000007.jpg"][0]
    row = marks.image_ids.tolist().index("000007.jpg")
    np.testing.assert_allclose(boxes.boxes[row], blank_box)
    expected = blank_box[:2] + BOX_LANDMARK_LAYOUT * blank_box[2:]
    np.testing.assert_allclose(marks.landmarks[row], expected, atol=0.01)


def columns(faces: list[int], size: tuple[int, int] = (218, 178)) -> FaceColumns:
    result = FaceColumns.allocate(np.array([f"{i:06d}.jpg" for i in range(len(faces))]))
    result.faces[:] = faces
    result.sizes[:] = size
    found = result.faces > 0
    result.boxes[found] = (10, 20, 30, 40)
    result.landmarks[found] = 25.0
    return result


def test_fill_fallbacks_in_order() -> None:
    faces = columns([1, 0, 0, UNREADABLE])
    dataset = np.array([[0, 0, 9, 9], [100, 50, 20, 10], [np.nan] * 4, [np.nan] * 4], np.float32)
    boxes, marks, counts = fill_fallbacks(faces, "align", dataset)
    assert counts == {"dataset_box": 1, "canonical": 1, "whole_image": 0}
    assert (marks[0] == 25.0).all() and tuple(boxes[0]) == (10, 20, 30, 40)  # found: kept
    np.testing.assert_allclose(boxes[1], [100, 50, 20, 10])
    np.testing.assert_allclose(marks[1], [100, 50] + BOX_LANDMARK_LAYOUT * [20, 10], rtol=1e-6)
    np.testing.assert_allclose(marks[2], CANONICAL_ALIGNED_LANDMARKS)
    np.testing.assert_allclose(boxes[2], CANONICAL_ALIGNED_BOX)
    assert np.isnan(marks[3]).all()  # unreadable: no row is written for it

    halved = columns([0], size=(109, 89))
    _, marks, _ = fill_fallbacks(halved, "align", None)
    np.testing.assert_allclose(marks[0], CANONICAL_ALIGNED_LANDMARKS / 2)

    boxes, marks, counts = fill_fallbacks(columns([0], size=(300, 400)), "wild", None)
    assert counts["whole_image"] == 1 and tuple(boxes[0]) == (0, 0, 400, 300)
    np.testing.assert_allclose(marks[0], BOX_LANDMARK_LAYOUT * [400, 300], rtol=1e-6)


def test_eye_distances() -> None:
    canonical = np.stack([CANONICAL_ALIGNED_LANDMARKS, CANONICAL_ALIGNED_LANDMARKS * 2])
    shifted = canonical.copy()
    shifted[0, 0] += (3, 4)
    distances = eye_distances(shifted, np.array([[218, 178], [436, 356]]))
    np.testing.assert_allclose(distances, [[5, 0], [0, 0]], atol=1e-5)


def test_default_output_dir(tmp_path: Path) -> None:
    assert default_output_dir(tmp_path) == tmp_path
    read_only = tmp_path / "read_only"
    read_only.mkdir(mode=0o555)  # read-only by its mode, even when the tests run as root
    assert default_output_dir(read_only) == annotation_cache_dir(read_only)

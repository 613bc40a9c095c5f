"""Seed 003's test sets: byte-identical materialisation, exact ten-crop, fallbacks, real images."""

from __future__ import annotations

import filecmp
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.transforms.functional import ten_crop as tv_ten_crop
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.data.cache_writer import read_rgb
from faceattr.data.loaders import load_dataset
from faceattr.data.record import FaceDataset
from faceattr.evaluation.protocols import (
    AFFACT_CROP,
    CropCounts,
    aligned_matrices,
    c_source_size,
    crop_counts,
    detected_box_matrices,
    file_sha256,
    load_protocol,
    majority_vote,
    materialise_protocols,
    ten_crop,
)
from faceattr.geometry import affact_alignment_matrix, box_matrix, transform_points, warp_affine
from faceattr.training.batch import CropSpec

SIZE = 56


def test_materialising_twice_gives_identical_bytes(fake_celeba: Path, tmp_path: Path) -> None:
    first = materialise_protocols(fake_celeba, tmp_path / "a", size=SIZE, progress=False)
    materialise_protocols(fake_celeba, tmp_path / "b", size=SIZE, progress=False)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == [
        "A.npy",
        "C.npy",
        "D.npy",
        "T.npy",
        "image_ids.npy",
        "labels.npy",
        "manifest.json",
    ]
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", names, shallow=False)
    assert mismatch == [] and errors == []
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert (
        manifest["image_ids"] == list(first.image_ids) == ["000010.jpg", "000011.jpg", "000012.jpg"]
    )
    for name in ("A", "C", "D", "T"):
        entry = manifest["protocols"][name]
        assert entry["sha256"] == file_sha256(tmp_path / "a" / f"{name}.npy")
    assert manifest["protocols"]["C"]["stored_shape"] == [
        3,
        c_source_size(SIZE),
        c_source_size(SIZE),
        3,
    ]
    assert manifest["seed"] == 0 and manifest["t_jitter"]["rotation_sigma"] == 20.0


def test_views_are_the_aligned_and_detected_crops(fake_celeba: Path, tmp_path: Path) -> None:
    materialise_protocols(
        fake_celeba, tmp_path / "p", protocols=["A", "D"], size=SIZE, progress=False
    )
    source = load_dataset(fake_celeba)
    rows = source.split_indices("test")
    assert source.landmarks is not None and source.boxes is not None
    images = torch.stack(
        [torch.from_numpy(read_rgb(source.image_path(int(i))).copy()) for i in rows]
    ).permute(0, 3, 1, 2)
    expected = {
        "A": affact_alignment_matrix(source.landmarks[rows], SIZE),
        "D": box_matrix(source.boxes[rows], SIZE, scale=2.0),
    }
    for name, matrices in expected.items():
        protocol = load_protocol(tmp_path / "p", name, verify=True)
        fresh = warp_affine(images, matrices, SIZE, dtype=torch.uint8).permute(0, 2, 3, 1)
        views = protocol.batch(np.arange(len(protocol)))
        assert views.shape == (3, 1, SIZE, SIZE, 3)
        difference = np.abs(views[:, 0].astype(int) - fresh.numpy().astype(int))
        # within OpenCV 4's 1/32 px fixed-point interpolation (OpenCV 5: within 1 level)
        assert difference.max() <= 4 and difference.mean() < 0.05
        np.testing.assert_array_equal(protocol.labels, source.labels[rows])
    with pytest.raises(ValueError, match="not materialised"):
        load_protocol(tmp_path / "p", "T")


def test_ten_crop_gives_ten_views_with_exact_mirrors(fake_celeba: Path, tmp_path: Path) -> None:
    materialise_protocols(fake_celeba, tmp_path / "p", protocols=["C"], size=SIZE, progress=False)
    protocol = load_protocol(tmp_path / "p", "C")
    views = protocol.batch([0, 2])
    large = c_source_size(SIZE)
    assert protocol.views == 10 and views.shape == (2, 10, SIZE, SIZE, 3)
    for k in range(5):
        np.testing.assert_array_equal(views[:, 5 + k], views[:, k, :, ::-1])
    stored = np.asarray(protocol.images[[0, 2]])
    np.testing.assert_array_equal(views[:, 0], stored[:, :SIZE, :SIZE])
    np.testing.assert_array_equal(views[:, 3], stored[:, large - SIZE :, large - SIZE :])
    offset = round((large - SIZE) / 2)
    np.testing.assert_array_equal(
        views[:, 4], stored[:, offset : offset + SIZE, offset : offset + SIZE]
    )
    assert len({views[0, k].tobytes() for k in range(10)}) == 10


def test_ten_crop_matches_torchvision_as_a_set() -> None:
    size = 42
    image = np.random.default_rng(0).integers(
        0, 256, (1, c_source_size(size), c_source_size(size), 3), dtype=np.uint8
    )
    mine = {view.tobytes() for view in ten_crop(image, size)[0]}
    theirs = tv_ten_crop(torch.from_numpy(image[0]).permute(2, 0, 1), [size, size])
    assert mine == {np.ascontiguousarray(v.permute(1, 2, 0).numpy()).tobytes() for v in theirs}


def test_t_is_d_perturbed_reproducibly_per_image(fake_celeba: Path, tmp_path: Path) -> None:
    materialise_protocols(
        fake_celeba, tmp_path / "s0", protocols=["D", "T"], size=SIZE, progress=False
    )
    materialise_protocols(
        fake_celeba, tmp_path / "val", protocols=["T"], split="val", size=SIZE, progress=False
    )
    materialise_protocols(
        fake_celeba, tmp_path / "s1", protocols=["T"], size=SIZE, seed=1, progress=False
    )
    d, t = load_protocol(tmp_path / "s0", "D"), load_protocol(tmp_path / "s0", "T")
    assert (np.abs(t.images.astype(int) - d.images.astype(int)).mean(axis=(1, 2, 3)) > 5).all()
    assert not np.array_equal(load_protocol(tmp_path / "s1", "T").images, t.images)
    assert set(load_protocol(tmp_path / "val", "T").image_ids).isdisjoint(t.image_ids)


def test_an_unreadable_image_is_left_out_of_every_protocol(
    fake_celeba: Path, tmp_path: Path
) -> None:
    corrupt = fake_celeba / "img_align_celeba" / "000011.jpg"
    corrupt.write_bytes(b"\xff\xd8 truncated")
    manifest = materialise_protocols(fake_celeba, tmp_path / "p", size=SIZE, progress=False)
    assert list(manifest.image_ids) == ["000010.jpg", "000012.jpg"]
    assert [image_id for image_id, _ in manifest.skipped] == ["000011.jpg"]
    corrupt.unlink()  # the same folder without that image: nothing to leave out
    materialise_protocols(fake_celeba, tmp_path / "q", size=SIZE, progress=False)
    for name in ("A", "C", "D", "T"):
        kept = load_protocol(tmp_path / "p", name, verify=True)
        assert len(kept) == 2
        np.testing.assert_array_equal(kept.images, load_protocol(tmp_path / "q", name).images)


def test_fallbacks_are_chosen_and_counted() -> None:
    landmarks = np.array([[[69, 111], [108, 111], [88, 134], [72, 152], [106, 152]]] * 3, float)
    landmarks[1:] = np.nan
    boxes = np.array([[np.nan] * 4, [40.0, 70.0, 100.0, 120.0], [np.nan] * 4])
    sizes = np.array([[178, 218]] * 3)
    crop = replace(AFFACT_CROP, out_size=(100, 100))
    detected, d_counts = detected_box_matrices(crop, landmarks, boxes, sizes)
    aligned, a_counts = aligned_matrices(crop, landmarks, boxes, sizes)
    np.testing.assert_allclose(aligned[0], affact_alignment_matrix(landmarks[:1], 100)[0])
    np.testing.assert_allclose(aligned[1:], detected[1:])
    np.testing.assert_allclose(detected[1], box_matrix(boxes[1:2], 100, scale=2.0)[0])
    # no box: the upright AFFACT box of the landmarks; neither: the whole image fits the crop
    assert detected[0, 0, 1] == 0 and detected[0, 1, 0] == 0
    corners = transform_points(detected[2:], np.array([[[-0.5, -0.5], [177.5, 217.5]]]))[0]
    assert corners[0, 1] == pytest.approx(-0.5) and corners[1, 1] == pytest.approx(99.5)
    assert d_counts == crop_counts("D", crop, landmarks, boxes) == CropCounts(1, 1, 1)
    assert a_counts == crop_counts("A", crop, landmarks, boxes) == CropCounts(2, 0, 1)
    # seed 000's type B needs a box: without one it falls back to the whole image
    type_b = CropSpec("seed000-b", (36, 36), 2.0)
    assert crop_counts("A", type_b, landmarks, boxes) == CropCounts(1, 0, 2)


def test_majority_vote_breaks_ties_by_the_mean_score() -> None:
    scores = np.zeros((2, 10, 2))
    scores[0, :6, 0] = 0.9  # 6 of 10 positive
    scores[1, :5, 0], scores[1, 5:, 0] = 0.9, 0.2  # tie, mean 0.55
    scores[1, :5, 1], scores[1, 5:, 1] = 0.6, 0.1  # tie, mean 0.35
    np.testing.assert_array_equal(majority_vote(scores), [[1, 0], [1, 0]])
    np.testing.assert_array_equal(majority_vote(torch.from_numpy(scores), threshold=0.95), 0)


def test_protocols_of_real_images(
    celeba_root: Path, real_celeba: FaceDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "empty-annotation-cache"))
    manifest = materialise_protocols(
        celeba_root, tmp_path / "p", size=SIZE, limit=20, progress=False
    )
    ids = real_celeba.image_ids[real_celeba.split_indices("test")[:20]].tolist()
    assert list(manifest.image_ids) == ids and manifest.skipped == ()
    # the sample has no landmark or box file: every protocol crops the whole image, and says so
    assert all(c == CropCounts(0, 0, 20) for c in manifest.crop_counts.values())
    a = load_protocol(tmp_path / "p", "A", verify=True)
    assert a.images.shape == (20, SIZE, SIZE, 3) and a.images[:, :, 10:46].std() > 10
    rows = [int(np.flatnonzero(real_celeba.image_ids == i)[0]) for i in ids]
    np.testing.assert_array_equal(a.labels, real_celeba.labels[rows])


def test_the_protocols_command(fake_celeba: Path, tmp_path: Path) -> None:
    out = tmp_path / "p"
    arguments = ["data", "protocols", str(fake_celeba), "--out", str(out), "--workers", "0"]
    result = CliRunner().invoke(app, [*arguments, "--protocols", "a,c", "--size", "28"])
    assert result.exit_code == 0, result.output
    assert "3 test images" in result.output
    assert "C: 3 from the detector box, 0 from a fallback, 0 whole images" in result.output
    assert load_protocol(out, "C").batch([0]).shape == (1, 10, 28, 28, 3)
    refused = CliRunner().invoke(app, [*arguments, "--protocols", "A,X"])
    assert refused.exit_code == 2 and "unknown protocols ['X']" in refused.output

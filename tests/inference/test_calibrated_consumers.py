"""One calibrated model gives the same number for the same face through predict, the ONNX file,
the index and the server, and reports unsure attributes within the abstention band."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from faceattr.data.record import FaceDataset
from faceattr.inference.onnx import export_onnx
from faceattr.inference.predictor import Predictor
from faceattr.models.calibration import AttributeCalibration, Calibration
from faceattr.retrieval.indexer import index_paths
from faceattr.retrieval.store import IndexStore
from faceattr.server import ServerSettings, create_app
from faceattr.training.checkpoint import load_description, save_thresholds


def mixed_calibration(attributes: tuple[str, ...]) -> Calibration:
    """Temperature, Platt and isotonic maps, a third of the attributes each."""
    maps = [
        AttributeCalibration.temperature(2.0),
        AttributeCalibration("platt", scale=0.7, bias=0.3),
        AttributeCalibration("isotonic", knots=((0.1, 0.5, 0.9), (0.05, 0.6, 0.95))),
    ]
    return Calibration(attributes, tuple(maps[k % 3] for k in range(len(attributes))), "test")


@pytest.fixture(scope="module")
def calibrated_model(tiny_real_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny real model with a calibration and thresholds stored."""
    folder = tmp_path_factory.mktemp("calibrated") / "best"
    shutil.copytree(tiny_real_model, folder)
    attributes = load_description(folder).attributes
    thresholds = np.linspace(0.3, 0.7, len(attributes)).tolist()
    save_thresholds(folder, thresholds, "test", mixed_calibration(attributes))
    return folder


def test_the_stored_calibration_round_trips(calibrated_model: Path) -> None:
    description = load_description(calibrated_model)
    assert description.calibration == mixed_calibration(description.attributes)
    assert description.calibration.methods[:3] == ("temperature", "platt", "isotonic")


def test_the_same_face_gets_the_same_calibrated_number_everywhere(
    calibrated_model: Path, tiny_real_model: Path, real_celeba: FaceDataset, tmp_path: Path
) -> None:
    photo = real_celeba.image_path(int(real_celeba.split_indices("test")[0]))
    raw = Predictor.from_checkpoint(tiny_real_model, device="cpu").predict(photo)[0]
    predictor = Predictor.from_checkpoint(calibrated_model, device="cpu", abstain=0.1)
    face = predictor.predict(photo)[0]
    calibration = load_description(calibrated_model).calibration
    assert calibration is not None
    expected = calibration.apply(raw.probabilities[None])[0]
    assert np.abs(expected - raw.probabilities).max() > 0.01  # the maps do change the numbers
    np.testing.assert_allclose(face.probabilities, expected, atol=1e-6)

    onnx = export_onnx(calibrated_model, tmp_path / "model.onnx")
    by_onnx = Predictor.from_checkpoint(onnx.onnx_path).predict(photo)[0]
    np.testing.assert_allclose(by_onnx.probabilities, face.probabilities, atol=1e-5)

    with IndexStore.open(str(tmp_path / "faces.db"), create=True) as store:
        index_paths(store, predictor, [photo], progress=False, workers=0)
        hit = store.search("", limit=10)[0]
        indexed = np.array([hit.probabilities[a] for a in store.attributes])
    np.testing.assert_allclose(indexed, face.probabilities, atol=1e-6)

    client = TestClient(create_app(predictor, None, ServerSettings()))
    response = client.post("/predict", files={"file": ("face.jpg", photo.read_bytes())})
    assert response.status_code == 200, response.text
    served = response.json()["faces"][0]["attributes"]
    np.testing.assert_allclose([a["probability"] for a in served], face.probabilities, atol=1e-6)

    within = np.abs(face.probabilities - face.thresholds) < 0.1
    assert within.any() and not within.all()
    np.testing.assert_array_equal(face.unsure, within)
    assert [a["unsure"] for a in served] == within.tolist()
    assert [a["unsure"] for a in face.to_dict()["attributes"].values()] == within.tolist()

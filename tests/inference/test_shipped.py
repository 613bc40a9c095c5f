"""The model shipped in the package (issue 8): stored without pickle, at most 10 MB, the default
of every command that needs a model, and good on real CelebA photos through the whole
detect-align-classify path."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open
from skimage import data as photos
from typer.testing import CliRunner

import faceattr.cli.explain
import faceattr.cli.predict  # noqa: F401  (registers `faceattr predict` and `explain`)
from faceattr.attributes import ATTRIBUTES
from faceattr.cli import app
from faceattr.data.baselines import majority_predictions
from faceattr.data.record import FaceDataset
from faceattr.inference.predictor import Predictor
from faceattr.shipped import SHIPPED_MODEL, shipped_model_path

REPOSITORY = Path(__file__).resolve().parents[2]
REAL_FACES = 240


@pytest.fixture(scope="module")
def shipped() -> Predictor:
    return Predictor.from_checkpoint(device="cpu")


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    Image.fromarray(photos.astronaut()).save(path)
    return path


def test_the_export_is_tensors_and_json_under_10_mb_with_its_card() -> None:
    folder = shipped_model_path()
    weights = folder / "model.safetensors"
    assert weights.stat().st_size <= 10 * 2**20
    with safe_open(str(weights), framework="pt") as tensors:
        assert len(list(tensors.keys())) > 100
    description = json.loads((folder / "model.json").read_text())
    assert tuple(description["attributes"]) == ATTRIBUTES
    thresholds = description["thresholds"]
    assert len(thresholds) == 40 and all(0 < t < 1 for t in thresholds)
    card = (folder / "MODEL_CARD.md").read_text()
    assert "faceattr train shipped_mobilenetv2" in card and "scripts/ship_model.py" in card


def test_the_shipped_model_is_the_default_and_reads_a_real_photo(
    shipped: Predictor, astronaut: Path
) -> None:
    assert shipped.description.model_name == "mobilenetv2"
    (face,) = shipped.predict(astronaut)
    said = dict(zip(face.attributes, face.decisions, strict=True))
    assert said["Smiling"] and said["No_Beard"]  # (it calls her Male: see the model card)
    assert not said["Eyeglasses"] and not said["Wearing_Hat"]


def test_it_loads_and_reads_a_photo_with_the_network_refused(
    astronaut: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("the shipped model must not reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    (face,) = Predictor.from_checkpoint(device="cpu").predict(astronaut)
    assert dict(zip(face.attributes, face.decisions, strict=True))["Smiling"]


def test_it_beats_the_majority_on_real_celeba_photos_through_detection(
    shipped: Predictor, real_celeba: FaceDataset
) -> None:
    rows = real_celeba.split_indices("test")[:REAL_FACES]
    paths = [real_celeba.image_path(int(row)) for row in rows]
    found = list(shipped.predict_paths(paths, workers=0, progress=False))
    kept = [k for k, image in enumerate(found) if image.faces]
    assert len(kept) >= 0.97 * len(rows)
    decisions = np.stack([found[k].faces[0].decisions for k in kept]).astype(np.uint8)
    truth = real_celeba.labels[rows[kept]]
    accuracy = (decisions == truth).mean(axis=0)
    train = real_celeba.labels[real_celeba.split_indices("train")]
    majority = (majority_predictions(train)[None, :] == truth).mean(axis=0)
    male = ATTRIBUTES.index("Male")
    assert accuracy.mean() >= 0.88 and accuracy.mean() >= majority.mean() + 0.07
    assert accuracy[male] >= 0.93


def test_predict_needs_no_model_option(astronaut: Path) -> None:
    result = CliRunner().invoke(app, ["predict", str(astronaut), "--workers", "0", "--all"])
    assert result.exit_code == 0, result.stderr
    assert "1 images, 1 read, 1 faces" in result.stderr
    smiling = next(line for line in result.stdout.splitlines() if "Smiling" in line)
    assert smiling.split()[2] == "yes"


def test_explain_needs_no_model_option(astronaut: Path, tmp_path: Path) -> None:
    out = tmp_path / "explained"
    arguments = ["explain", str(astronaut), "-a", "Smiling", "--out", str(out)]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.stderr
    assert (out / "explain.html").is_file() and (out / "face1_Smiling.png").is_file()


def test_a_built_wheel_carries_the_weights(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(tmp_path), str(REPOSITORY)],
        check=True,
    )
    (wheel,) = tmp_path.glob("faceattr-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("model.safetensors", "model.json", "MODEL_CARD.md"):
        assert f"faceattr/weights/{SHIPPED_MODEL}/{name}" in names

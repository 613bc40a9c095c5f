"""``faceattr.predict``: one call from a photo to typed faces, for every input kind, the shipped
model by default, and a model with numeric and categorical attributes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import faceattr
from faceattr.data.record import FaceDataset
from faceattr.faces.images import ImageDecodeError
from faceattr.inference.api import Face
from faceattr.inference.predictor import Predictor
from faceattr.inference.values import BinaryValue, CategoricalValue, NumericValue


@pytest.fixture(scope="module")
def photo(real_celeba: FaceDataset) -> Path:
    return real_celeba.image_path(int(real_celeba.split_indices("test")[0]))


def test_one_call_gives_typed_values_of_every_kind(kinds_model: Path, photo: Path) -> None:
    [face] = faceattr.predict(photo, model=kinds_model, device="cpu")
    [expected] = Predictor.from_checkpoint(kinds_model, device="cpu").predict(photo)
    assert isinstance(face, Face) and face.box == pytest.approx(expected.box)
    assert list(face.attributes) == ["Male", "hair", "age", "Smiling"]
    male, hair, age = face["Male"], face["hair"], face["age"]
    assert isinstance(male, BinaryValue) and isinstance(age, NumericValue)
    assert isinstance(hair, CategoricalValue)
    assert male.probability == pytest.approx(float(expected.probabilities[0]))
    assert male.present == (male.probability > 0.3)
    assert age.value == pytest.approx(expected.numeric["age"]) and age.unit == "years"
    assert list(hair.probabilities.values()) == pytest.approx(expected.categorical["hair"])
    with pytest.raises(KeyError, match="the model predicts: Male, hair, age, Smiling"):
        face["Eyeglasses"]


def test_paths_pil_images_arrays_and_lists_give_the_same_faces(
    kinds_model: Path, photo: Path
) -> None:
    with Image.open(photo) as image:
        pil = image.convert("RGB")
    blank = np.full((160, 120, 3), 128, np.uint8)
    alone = faceattr.predict(str(photo), model=kinds_model, device="cpu")
    together = faceattr.predict([photo, pil, np.asarray(pil), blank], model=kinds_model)
    assert together == [alone, alone, alone, []]
    with pytest.raises(ImageDecodeError):
        faceattr.predict(b"not an image", model=kinds_model)


def test_the_shipped_model_by_default(photo: Path) -> None:
    [face] = faceattr.predict(photo)
    assert len(face.attributes) == 40
    assert all(isinstance(value, BinaryValue) for value in face.attributes.values())
    male = face["Male"]
    assert isinstance(male, BinaryValue) and male.present == (male.probability > male.threshold)
    predictor = Predictor.from_checkpoint(device="cpu")
    assert faceattr.predict(photo, model=predictor) == [face]


def test_importing_faceattr_does_not_import_torch() -> None:
    code = "import sys, faceattr; print('torch' in sys.modules, callable(faceattr.predict))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "True"], result.stderr

"""``faceattr.predict(image)``: every face of a photo and its attributes, typed, in one call.

::

    import faceattr

    for face in faceattr.predict("photo.jpg"):          # the shipped model; model="runs/RUN"
        print(face.box, face["Smiling"].present, face["Smiling"].probability)

Faces are found and cut out as ``faceattr predict`` finds and cuts them
(:class:`~faceattr.inference.predictor.Predictor`); each model is loaded once per process.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import overload

from faceattr.inference.predictor import FacePrediction, ImageInput, Predictor
from faceattr.inference.values import AttributeValue
from faceattr.shipped import model_path

ModelChoice = str | Path | Predictor | None
"""A model: a run folder, an export folder, a ``.ckpt`` or an ``.onnx`` file, a predictor
already built, or None for the model shipped in the package."""


@dataclass(frozen=True)
class Face:
    """One face found in an image: where it is, and what the model says about each attribute
    (:class:`~faceattr.inference.values.BinaryValue`, ``NumericValue`` or ``CategoricalValue``,
    in the model's order)."""

    box: tuple[float, float, float, float]
    """x, y, width, height in the image's pixels."""
    landmarks: tuple[tuple[float, float], ...]
    """Five (x, y) points: eyes, nose, mouth corners."""
    detection_score: float
    attributes: dict[str, AttributeValue]

    @classmethod
    def of(cls, face: FacePrediction) -> Face:
        """The face of a predictor's :class:`~faceattr.inference.predictor.FacePrediction`."""
        box = (float(face.box[0]), float(face.box[1]), float(face.box[2]), float(face.box[3]))
        return cls(box, face.landmarks, float(face.detection_score), face.values())

    def __getitem__(self, name: str) -> AttributeValue:
        """The value of attribute ``name`` (``KeyError`` naming the known ones)."""
        try:
            return self.attributes[name]
        except KeyError:
            known = ", ".join(self.attributes)
            raise KeyError(f"no attribute {name!r}; the model predicts: {known}") from None


@lru_cache(maxsize=4)
def _predictor(path: Path, device: str, detector: str) -> Predictor:
    return Predictor.from_checkpoint(path, device=device, detector=detector)


def predictor_of(model: ModelChoice, device: str = "auto", detector: str = "yunet") -> Predictor:
    """The predictor of ``model`` (see :data:`ModelChoice`), built once per path, device and
    detector."""
    if isinstance(model, Predictor):
        return model
    return _predictor(model_path(model).resolve(), device, detector)


@overload
def predict(
    images: ImageInput, model: ModelChoice = None, device: str = "auto", detector: str = "yunet"
) -> list[Face]: ...


@overload
def predict(
    images: list[ImageInput] | tuple[ImageInput, ...],
    model: ModelChoice = None,
    device: str = "auto",
    detector: str = "yunet",
) -> list[list[Face]]: ...


def predict(
    images: ImageInput | list[ImageInput] | tuple[ImageInput, ...],
    model: ModelChoice = None,
    device: str = "auto",
    detector: str = "yunet",
) -> list[Face] | list[list[Face]]:
    """Every face of ``images``, best detection first, with its attributes: for one image (a
    path, encoded bytes, a Pillow image or an RGB array) a list of :class:`Face` (empty: no face
    found); for a list or tuple of images, one such list per image. ``model``: see
    :data:`ModelChoice` (default: the shipped model). Raises ``ImageDecodeError`` for an
    unreadable image, ``FileNotFoundError`` for a missing model."""
    predictor = predictor_of(model, device, detector)
    if isinstance(images, list | tuple):
        return [[Face.of(face) for face in predictor.predict(image)] for image in images]
    return [Face.of(face) for face in predictor.predict(images)]

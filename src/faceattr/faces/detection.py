"""Face detection: the `FaceDetector` interface, its `Detection` result and a registry of detectors.

Landmarks follow CelebA's order and convention: lefteye, righteye, nose, leftmouth, rightmouth,
where "left" means the LEFT side of the image (CelebA's aligned images have lefteye_x=69 <
righteye_x=107), not the subject's left. A detector is one file that subclasses `FaceDetector`
and decorates it with `@register_detector("name")`; `create_detector("name")` builds it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

LANDMARK_NAMES = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")


@dataclass(frozen=True, eq=False)
class Detection:
    """One detected face, in the pixel coordinates of the image it was found in.

    ``box`` is (x, y, width, height); ``landmarks`` is a read-only (5, 2) float32 array of (x, y)
    in `LANDMARK_NAMES` order; ``score`` is the detector's confidence in [0, 1].
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    def __post_init__(self) -> None:
        if len(self.box) != 4:
            raise ValueError(f"box must be (x, y, width, height), got {self.box!r}")
        landmarks = np.array(self.landmarks, dtype=np.float32)
        if landmarks.shape != (5, 2):
            raise ValueError(f"landmarks must have shape (5, 2), got {landmarks.shape}")
        landmarks.setflags(write=False)
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        object.__setattr__(self, "landmarks", landmarks)
        object.__setattr__(self, "score", float(self.score))

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return max(self.box[2], 0.0) * max(self.box[3], 0.0)

    @property
    def center(self) -> tuple[float, float]:
        """Box centre (x, y)."""
        x, y, w, h = self.box
        return x + w / 2, y + h / 2

    def rescaled(self, scale_x: float, scale_y: float) -> Detection:
        """This detection in the image resized by ``scale_x`` across and ``scale_y`` down."""
        x, y, w, h = self.box
        box = (x * scale_x, y * scale_y, w * scale_x, h * scale_y)
        landmarks = self.landmarks * np.array([scale_x, scale_y], dtype=np.float32)
        return Detection(box=box, landmarks=landmarks, score=self.score)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 RGB view or copy of a grayscale (HxW, HxWx1), RGB or RGBA uint8 image.

    RGBA drops its alpha channel. Raises `TypeError` for other dtypes and `ValueError` for other
    shapes or empty images.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        kind = image.dtype if isinstance(image, np.ndarray) else type(image).__name__
        raise TypeError(f"expected a uint8 numpy image, got {kind}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an HxW, HxWx1, HxWx3 or HxWx4 image, got shape {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"empty image of shape {image.shape}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def sort_by_score(detections: Iterable[Detection]) -> list[Detection]:
    """Detections from the most to the least confident."""
    return sorted(detections, key=lambda d: d.score, reverse=True)


def main_face(detections: Sequence[Detection], image_size: tuple[int, int]) -> Detection | None:
    """The main face of an image of ``image_size`` (height, width): the largest, most central one.

    Each face is weighted by its box area times ``1 - 0.5 * d``, where ``d`` is the distance of
    its box centre from the image centre divided by half the image diagonal (so a face in a corner
    counts half as much as the same face in the middle). Returns None when there is no detection.
    """
    if not detections:
        return None
    height, width = image_size
    half_diagonal = 0.5 * float(np.hypot(width, height))

    def weight(d: Detection) -> float:
        cx, cy = d.center
        distance = min(float(np.hypot(cx - width / 2, cy - height / 2)) / half_diagonal, 1.0)
        return d.area * (1.0 - 0.5 * distance)

    return max(detections, key=weight)


class FaceDetector(abc.ABC):
    """A face detector: RGB uint8 images in, faces with 5 landmarks out, best score first.

    Instances hold a native model and are not thread-safe: use one per thread or process.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def detect(self, image: np.ndarray) -> list[Detection]:
        """All faces in ``image`` (RGB uint8 HxWx3; grayscale and RGBA are accepted), sorted by
        score; an empty list when there is none."""

    def detect_many(self, images: Iterable[np.ndarray]) -> list[list[Detection]]:
        """`detect` over several images (of any sizes), in order."""
        return [self.detect(image) for image in images]


DetectorType = TypeVar("DetectorType", bound=type[FaceDetector])
_REGISTRY: dict[str, type[FaceDetector]] = {}


def register_detector(name: str) -> Callable[[DetectorType], DetectorType]:
    """Class decorator that makes a `FaceDetector` creatable as ``create_detector(name)``."""

    def register(cls: DetectorType) -> DetectorType:
        if name in _REGISTRY:
            raise ValueError(f"face detector {name!r} is already registered by {_REGISTRY[name]}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return register


def list_detectors() -> list[str]:
    """Names of the registered face detectors, sorted."""
    return sorted(_REGISTRY)


def create_detector(name: str = "yunet", **kwargs: Any) -> FaceDetector:
    """A new detector of the registered ``name``, built with ``kwargs``."""
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown face detector {name!r}; available: {', '.join(list_detectors())}"
        )
    return _REGISTRY[name](**kwargs)


# Detector modules register themselves on import (one file per detector).
from faceattr.faces import yunet  # noqa: E402,F401

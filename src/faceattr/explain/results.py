"""What ``faceattr explain`` wrote for one image: per face, its attribute values and figures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faceattr.inference.values import AttributeValue


@dataclass(frozen=True)
class StageFigure:
    """The feature-map grid of convolutional stage ``number`` (1-based): ``shown`` of its
    ``channels`` maps of ``size`` (height, width), from the backbone module ``name``."""

    number: int
    name: str
    channels: int
    shown: int
    size: tuple[int, int]
    path: Path


@dataclass(frozen=True)
class SaliencyFigure:
    """The heatmap of attribute ``name`` (the model's ``value`` for it) over the face, by
    ``method`` at backbone layer ``layer``."""

    name: str
    value: AttributeValue
    method: str
    layer: str
    path: Path


@dataclass(frozen=True)
class FaceExplanation:
    """One face: where it is (None when the whole image was the face), what the model says
    about every attribute (``values``, in the model's order), its aligned input (``crop``), stage
    grids and saliency overlays."""

    number: int
    box: tuple[float, float, float, float] | None
    detection_score: float | None
    values: dict[str, AttributeValue]
    crop: Path
    stages: tuple[StageFigure, ...]
    saliency: tuple[SaliencyFigure, ...]

    def files(self) -> list[Path]:
        """Every PNG written for this face."""
        return [self.crop, *(s.path for s in self.stages), *(s.path for s in self.saliency)]


@dataclass(frozen=True)
class Explanation:
    """The HTML ``page`` and the faces of one explained image (none: no face was found);
    ``source`` names the image and ``model`` the model (e.g. ``backbone (resnet18)``)."""

    page: Path
    source: str
    model: str
    faces: tuple[FaceExplanation, ...]

    def files(self) -> list[Path]:
        """The page and every PNG it shows."""
        return [self.page, *(path for face in self.faces for path in face.files())]

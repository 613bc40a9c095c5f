"""The JSON the server answers with: Pydantic models (so the OpenAPI spec is precise) and the
functions that build them from the predictor's and the index's dataclasses."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from faceattr.inference.predictor import FacePrediction
from faceattr.inference.values import BinaryValue, NumericValue
from faceattr.retrieval.store import SearchHit


class Box(BaseModel):
    """A face box in the source image's pixels."""

    x: float
    y: float
    width: float
    height: float


class Point(BaseModel):
    """A landmark in the source image's pixels."""

    x: float
    y: float


class AttributeScore(BaseModel):
    """One binary attribute of one face: its probability, the model's threshold and the
    decision."""

    name: str
    probability: float = Field(ge=0, le=1)
    threshold: float = Field(ge=0, le=1)
    present: bool
    unsure: bool = Field(description="the probability lies within --abstain of the threshold")


class NumericScore(BaseModel):
    """One numeric attribute of one face: the model's estimate in the attribute's unit."""

    name: str
    value: float
    unit: str = Field(description="e.g. years; empty when the attribute has none")


class CategoricalScore(BaseModel):
    """One categorical attribute of one face: the most probable class and every class's
    probability."""

    name: str
    label: str = Field(description="the most probable class")
    probability: float = Field(ge=0, le=1, description="the probability of `label`")
    probabilities: dict[str, float] = Field(description="every class's, in the model's order")


class Face(BaseModel):
    """One detected face and its attributes, each list in the model's attribute order."""

    box: Box
    landmarks: list[Point] = Field(description="lefteye, righteye, nose, leftmouth, rightmouth")
    detection_score: float
    attributes: list[AttributeScore] = Field(description="the binary attributes")
    numeric: list[NumericScore] = Field(default_factory=list)
    categorical: list[CategoricalScore] = Field(default_factory=list)


class PredictResponse(BaseModel):
    """Every face of an uploaded image (none when no face was found)."""

    width: int = Field(description="width of the decoded, upright image in pixels")
    height: int
    faces: list[Face]


class Hit(BaseModel):
    """One face an index search found; its image and thumbnail URLs are this server's."""

    face_id: int
    file_name: str
    box: Box
    score: float = Field(description="the query's margin, or the similarity to the `like` face")
    probabilities: dict[str, float]
    image_url: str
    thumbnail_url: str


class SearchResponse(BaseModel):
    """The ranked hits of a search."""

    query: str
    min_prob: float
    like: int | None
    hits: list[Hit]


class ModelInfo(BaseModel):
    """The model answering /predict."""

    name: str
    attributes: list[str]
    device: str


class IndexInfo(BaseModel):
    """The index answering /search."""

    files: int
    failed: int
    faces: int
    model_name: str | None
    attributes: list[str] = Field(description="what queries can name")


class Health(BaseModel):
    """What the server can do: a model (for /predict), an index (for /search), the upload limit."""

    status: str
    model: ModelInfo | None
    index: IndexInfo | None
    max_upload_bytes: int


class ErrorMessage(BaseModel):
    """Why a request was refused."""

    detail: str


def box_of(box: tuple[float, float, float, float]) -> Box:
    """A :class:`Box` of an ``(x, y, width, height)`` tuple."""
    x, y, width, height = (float(v) for v in box)
    return Box(x=x, y=y, width=width, height=height)


def face_of(face: FacePrediction) -> Face:
    """The response model of one predicted face."""
    binary, numeric, categorical = [], [], []
    for name, value in face.values().items():
        if isinstance(value, BinaryValue):
            binary.append(AttributeScore(name=name, **value.to_dict()))
        elif isinstance(value, NumericValue):
            numeric.append(NumericScore(name=name, value=value.value, unit=value.unit))
        else:
            categorical.append(
                CategoricalScore(
                    name=name,
                    label=value.label,
                    probability=value.probability,
                    probabilities=value.probabilities,
                )
            )
    return Face(
        box=box_of(face.box),
        landmarks=[Point(x=float(x), y=float(y)) for x, y in face.landmarks],
        detection_score=float(face.detection_score),
        attributes=binary,
        numeric=numeric,
        categorical=categorical,
    )


def hit_of(hit: SearchHit) -> Hit:
    """The response model of one search hit, with the URLs of its image and thumbnail."""
    return Hit(
        face_id=hit.face_id,
        file_name=Path(hit.path).name,
        box=box_of(hit.box),
        score=float(hit.score),
        probabilities=hit.probabilities,
        image_url=f"/faces/{hit.face_id}/image",
        thumbnail_url=f"/faces/{hit.face_id}/thumbnail",
    )

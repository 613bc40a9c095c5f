"""``explain_image``: one image in, one folder out. For each face, its aligned model input, the
feature maps after each convolutional stage (a grid per stage, as seed 000's Fig. 8), a saliency
heatmap per attribute over the face (binary, categorical or numeric:
:class:`~faceattr.explain.saliency.AttributeTarget`), and ``explain.html`` showing them all::

    DIR/face1_crop.png  DIR/face1_stage1.png ...  DIR/face1_Eyeglasses.png ...  DIR/explain.html

Given a :class:`~faceattr.inference.predictor.Predictor`, faces are detected and aligned exactly
as the predictor aligns them for prediction (the way the model's training cut its faces); given a
bare :class:`~faceattr.models.AttributeModel`, the whole image is taken as the face, resized to
the model's input.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from faceattr.evaluation.thresholds import DEFAULT_THRESHOLD
from faceattr.explain.feature_maps import (
    capture_feature_maps,
    conv_stages,
    feature_grid,
    model_device,
)
from faceattr.explain.page import save_figure, write_page
from faceattr.explain.results import Explanation, FaceExplanation, SaliencyFigure, StageFigure
from faceattr.explain.saliency import cam_method, overlay_heatmap, saliency_maps
from faceattr.inference.predictor import ImageInput, Predictor, as_decoded
from faceattr.inference.values import AttributeValue, BinaryValue, attribute_values
from faceattr.models import AttributeModel
from faceattr.models.preprocessing import to_model_input

PAGE_FILE = "explain.html"


@dataclass(frozen=True)
class FaceInput:
    """One face to explain: its aligned model input (uint8 ``(H, W)`` or ``(H, W, 3)``), where it
    was found (None: the whole image) and the model's values for it."""

    crop: np.ndarray
    box: tuple[float, float, float, float] | None
    detection_score: float | None
    values: dict[str, AttributeValue]


def choose_attributes(
    values: dict[str, AttributeValue], requested: Sequence[str] = (), top: int = 3
) -> list[str]:
    """The attributes to explain: the ``top`` most probable present binary ones, every numeric
    and categorical one (each always has an answer), then ``requested``; the single most
    probable attribute when that leaves none."""
    binary = {name: v for name, v in values.items() if isinstance(v, BinaryValue)}
    present = sorted(
        (n for n, v in binary.items() if v.present), key=lambda n: -binary[n].probability
    )
    chosen = present[:top] + [name for name in values if name not in binary]
    chosen += [name for name in requested if name not in chosen]
    if not chosen and binary:
        chosen = [max(binary, key=lambda n: binary[n].probability)]
    return chosen


def check_attributes(model: AttributeModel, requested: Sequence[str]) -> None:
    """``KeyError`` naming any of ``requested`` that the model does not predict."""
    unknown = [name for name in requested if name not in model.attributes]
    if unknown:
        raise KeyError(
            f"the model does not predict {', '.join(unknown)}; it predicts: "
            f"{', '.join(model.attributes)}"
        )


def detected_faces(predictor: Predictor, image: ImageInput) -> list[FaceInput]:
    """The faces the predictor finds in ``image``, aligned as it aligns them."""
    faces = []
    for face in predictor.predict(image, keep_crops=True):
        assert face.crop is not None  # asked for
        crop = face.crop[..., 0] if face.crop.shape[2] == 1 else face.crop
        faces.append(FaceInput(crop, face.box, face.detection_score, face.values()))
    return faces


def whole_image_face(model: AttributeModel, image: ImageInput) -> FaceInput:
    """``image`` resized to the model's input (and made grey for grey models) as one face,
    scored by ``model`` against the default threshold."""
    config = model.input_config
    height, width = config.size
    pil = Image.fromarray(as_decoded(image).pixels).resize(
        (width, height), Image.Resampling.BILINEAR
    )
    crop = np.asarray(pil.convert("L") if config.grayscale else pil)
    inputs = to_model_input([crop], config).to(model_device(model))
    with torch.no_grad():
        outputs = {n: v[0].float().cpu() for n, v in model.eval().attribute_outputs(inputs).items()}
    binary = {
        n: BinaryValue(float(p), DEFAULT_THRESHOLD, float(p) > DEFAULT_THRESHOLD)
        for n, p in outputs.items()
        if model.schema[n].kind == "binary"
    }
    numeric = {n: float(v) for n, v in outputs.items() if model.schema[n].kind == "numeric"}
    categorical = {
        n: v.tolist() for n, v in outputs.items() if model.schema[n].kind == "categorical"
    }
    values = attribute_values(model.schema, binary, numeric, categorical)
    return FaceInput(crop, None, None, values)


def model_label(model: AttributeModel) -> str:
    """The registry name, with the architecture for generic backbones (``backbone (resnet18)``)."""
    arch = model.model_args.get("arch")
    return f"{model.model_name} ({arch})" if arch else model.model_name


def explain_face(
    model: AttributeModel,
    face: FaceInput,
    number: int,
    out_dir: Path,
    attributes: Sequence[str] = (),
    top: int = 3,
    max_channels: int = 64,
) -> FaceExplanation:
    """Write face ``number``'s crop, stage grids and saliency overlays into ``out_dir``."""
    prefix = f"face{number}"
    inputs = to_model_input([face.crop], model.input_config).to(model_device(model))
    crop = save_figure(face.crop, f"Face {number}: model input", out_dir / f"{prefix}_crop.png")
    stages = []
    for index, stage in enumerate(capture_feature_maps(model, inputs), start=1):
        grid = feature_grid(stage.maps[0], max_channels)
        channels, height, width = stage.maps.shape[1:]
        title = f"Stage {index} ({stage.name}): {len(grid.channels)} of {channels} channels"
        path = save_figure(grid.image, title, out_dir / f"{prefix}_stage{index}.png")
        stages.append(
            StageFigure(index, stage.name, channels, len(grid.channels), (height, width), path)
        )
    method, layer = cam_method(model).__name__, conv_stages(model)[-1].name
    saliency = []
    for name in choose_attributes(face.values, attributes, top):
        heatmap = saliency_maps(model, inputs, name)[0]
        value = face.values[name]
        shown = f"p = {value.probability:.3f}" if isinstance(value, BinaryValue) else str(value)
        path = save_figure(
            overlay_heatmap(face.crop, heatmap),
            f"{name}: {shown}",
            out_dir / f"{prefix}_{name}.png",
        )
        saliency.append(SaliencyFigure(name, value, method, layer, path))
    return FaceExplanation(
        number, face.box, face.detection_score, face.values, crop, tuple(stages), tuple(saliency)
    )


@contextmanager
def single_view(model: AttributeModel) -> Iterator[None]:
    """Saliency follows one forward pass: switch ``test_time_mirror`` off meanwhile."""
    mirror = model.test_time_mirror
    model.test_time_mirror = False
    try:
        yield
    finally:
        model.test_time_mirror = mirror


def explain_image(
    model_or_predictor: AttributeModel | Predictor,
    image: ImageInput,
    attributes: Sequence[str],
    out_dir: str | Path,
    top: int = 3,
    max_channels: int = 64,
    progress: bool = True,
) -> Explanation:
    """Explain every face of ``image`` into ``out_dir`` (created) and write its HTML page.

    Each face gets its feature maps per convolutional stage (at most ``max_channels`` per grid)
    and a saliency overlay for each of ``attributes`` plus its ``top`` most probable present
    attributes. ``image`` is a path, encoded bytes, a Pillow image or an array. An attribute the
    model does not predict raises ``KeyError``; an ONNX predictor (no PyTorch model),
    ``TypeError``. No face found: the page says so and ``faces`` is empty.
    """
    if isinstance(model_or_predictor, Predictor):
        model = model_or_predictor.model
        check_attributes(model, attributes)
        faces = detected_faces(model_or_predictor, image)
    else:
        model = model_or_predictor
        check_attributes(model, attributes)
        faces = [whole_image_face(model, image)]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with single_view(model):
        explained = tuple(
            explain_face(model, face, number, out, attributes, top, max_channels)
            for number, face in enumerate(
                tqdm(faces, desc="explain", unit="face", disable=not progress), start=1
            )
        )
    source = str(image) if isinstance(image, str | Path) else type(image).__name__
    explanation = Explanation(out / PAGE_FILE, source, model_label(model), explained)
    write_page(explanation)
    return explanation

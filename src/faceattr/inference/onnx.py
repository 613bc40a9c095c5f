"""A trained model as an ONNX file, and onnxruntime running it behind the predictor.

:class:`PredictionGraph` is what prediction computes from a normalised batch: per-attribute
probabilities (calibrated by the model's stored calibration, when it has one) and the
L2-normalised embedding. PyTorch runs it directly; :func:`export_onnx` writes
it to ``out.onnx`` (dynamic batch axis) with the model's description beside it as ``out.json``, and
:class:`OnnxNetwork` runs that file on onnxruntime's CPU provider, so
``Predictor.from_checkpoint("out.onnx")`` pre-processes exactly as the PyTorch path does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import torch
import torch.nn.functional as F
from torch import nn

from faceattr.defaults import DEFAULT_OPSET
from faceattr.models import AttributeModel, logits_to_probabilities
from faceattr.models.calibration import Calibration
from faceattr.training.atomic import atomic_write
from faceattr.training.checkpoint import (
    ModelDescription,
    ModelFileError,
    load_checkpoint,
    load_description,
    read_json,
)

INPUT_NAME = "images"
OUTPUT_NAMES = ("probabilities", "embedding")


class PredictionGraph(nn.Module):
    """``images (N, C, H, W)`` normalised -> ``(probabilities (N, K), embedding (N, D))``, the
    probabilities through ``calibration`` when given, the embedding L2-normalised: what both
    prediction backends compute."""

    def __init__(self, model: AttributeModel, calibration: Calibration | None = None) -> None:
        super().__init__()
        self.model = model
        self.calibration = None if calibration is None else calibration.layer()

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities and unit-length embeddings of a normalised batch."""
        logits, features = self.model.logits_and_features(images)
        if not self.model.layout.binary_only:  # the decoded outputs, side by side
            return self.model.layout.flat_decode(logits), F.normalize(features.flatten(1), dim=1)
        probabilities = logits_to_probabilities(logits, self.model.head_type)
        if self.calibration is not None:
            probabilities = self.calibration(probabilities)
        return probabilities, F.normalize(features.flatten(1), dim=1)


def description_path(onnx_path: str | Path) -> Path:
    """Where the model description of ``onnx_path`` lives: the same name with ``.json``."""
    return Path(onnx_path).with_suffix(".json")


@dataclass(frozen=True)
class OnnxExport:
    """What :func:`export_onnx` wrote, and the largest difference from PyTorch it measured."""

    onnx_path: Path
    description_path: Path
    opset: int
    max_difference: float
    """Largest absolute difference between onnxruntime's and PyTorch's outputs on a test batch."""


def export_onnx(
    checkpoint: str | Path, out: str | Path, opset: int = DEFAULT_OPSET, batch: int = 2
) -> OnnxExport:
    """Export the model at ``checkpoint`` (see ``load_checkpoint``) to ``out`` (ONNX, dynamic
    batch axis; inputs ``images``, outputs ``probabilities``, calibrated inside the graph when the
    model has a calibration, and ``embedding``) and its
    description to ``out`` with ``.json``; then run a random batch of ``batch`` images through
    both and report the largest output difference.

    The exporter is ``torch.export``'s (``dynamo=True``, PyTorch's default since 2.9; offline,
    through ``onnxscript``); the TorchScript exporter it replaced is deprecated. The weights stay
    inside the one file (up to ONNX's 2 GB), so the ``.onnx`` and ``.json`` are all there is."""
    out = Path(out)
    if out.suffix != ".onnx":
        raise ValueError(f"the ONNX file must end in .onnx, got {out}")
    model = load_checkpoint(checkpoint)
    description = load_description(checkpoint)
    graph = PredictionGraph(model, description.calibration).eval()
    height, width = model.input_config.size
    example = torch.randn(batch, model.input_config.channels, height, width)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        graph,
        (example,),
        str(out),
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        opset_version=opset,
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    text = json.dumps(description.to_dict(), indent=2, sort_keys=True) + "\n"
    json_path = description_path(out)
    atomic_write(json_path, lambda file: file.write(text.encode()))
    with torch.inference_mode():
        expected = graph(example)
    actual = OnnxNetwork(out)(example)
    difference = max(
        float(np.abs(a - e.numpy()).max()) for a, e in zip(actual, expected, strict=True)
    )
    return OnnxExport(out, json_path, opset, difference)


class OnnxNetwork:
    """An exported :class:`PredictionGraph` on onnxruntime (``CPUExecutionProvider``)."""

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX file at {path}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime's own classes (InvalidProtobuf, Fail, ...)
            reason = str(error).strip().splitlines()[0]
            raise ModelFileError(f"{path}: not a loadable ONNX model ({reason})") from None
        self.path = path

    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities ``(N, K)`` and embeddings ``(N, D)`` of a normalised batch."""
        feed = {INPUT_NAME: images.detach().cpu().float().contiguous().numpy()}
        probabilities, embedding = self.session.run(list(OUTPUT_NAMES), feed)
        return np.asarray(probabilities), np.asarray(embedding)


def load_onnx_description(path: str | Path) -> ModelDescription:
    """The model description written beside the ONNX file at ``path``."""
    json_path = description_path(path)
    if not json_path.is_file():
        raise FileNotFoundError(
            f"{json_path} is missing: an ONNX model needs the description that "
            "`faceattr export --onnx` writes beside it"
        )
    return ModelDescription.from_dict(read_json(json_path), str(json_path))

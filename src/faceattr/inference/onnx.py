"""A trained model as an ONNX file, and onnxruntime running it behind the predictor.

:class:`PredictionGraph` is what prediction computes from a normalised batch: the binary
attributes' probabilities (calibrated by the model's stored calibration, when it has one), the
L2-normalised embedding and, for a model with numeric or categorical attributes, their decoded
outputs (``values``: the expected value, or the class probabilities; :func:`value_slices`).
PyTorch runs it directly; :func:`export_onnx` writes
it to ``out.onnx`` (dynamic batch axis) with the model's description beside it as ``out.json``, and
:class:`OnnxNetwork` runs that file on onnxruntime's CPU provider, so
``Predictor.from_checkpoint("out.onnx")`` pre-processes exactly as the PyTorch path does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import torch
import torch.nn.functional as F
from torch import nn

from faceattr.data.schema import Schema
from faceattr.defaults import DEFAULT_OPSET
from faceattr.models import AttributeModel
from faceattr.models.calibration import Calibration
from faceattr.models.outputs import binary_logits
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
VALUES_NAME = "values"
"""The third output, of models with numeric or categorical attributes only."""


def value_slices(schema: Schema) -> dict[str, slice]:
    """Where each numeric and categorical attribute of ``schema`` lies in the prediction graph's
    ``values``, in schema order: one column (the expected value, in its unit) or one per class
    (their probabilities)."""
    slices: dict[str, slice] = {}
    start = 0
    for attribute in schema.attributes:
        if attribute.kind != "binary":
            width = len(attribute.classes) if attribute.kind == "categorical" else 1
            slices[attribute.name] = slice(start, start + width)
            start += width
    return slices


class PredictionGraph(nn.Module):
    """``images (N, C, H, W)`` normalised -> ``(probabilities (N, K), embedding (N, D))``, plus
    ``values (N, V)`` when the model has numeric or categorical attributes: P(present) of the
    ``K`` binary attributes through ``calibration`` when given, the embedding L2-normalised, and
    the other attributes decoded (:func:`value_slices`): what both prediction backends compute."""

    def __init__(self, model: AttributeModel, calibration: Calibration | None = None) -> None:
        super().__init__()
        self.model = model
        binary = [a.name for a in model.schema.attributes if a.kind == "binary"]
        self.calibration = (
            None if calibration is None or not binary else calibration.select(binary).layer()
        )
        self.others = tuple(a for a in model.schema.attributes if a.kind != "binary")

    @property
    def output_names(self) -> tuple[str, ...]:
        """The names of :meth:`forward`'s outputs, in order."""
        return (*OUTPUT_NAMES, VALUES_NAME) if self.others else OUTPUT_NAMES

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Probabilities, unit-length embeddings and (see :attr:`output_names`) the other
        attributes' values of a normalised batch."""
        logits, features = self.model.logits_and_features(images)
        outputs = binary_logits(logits, self.model.head_type)
        probabilities = torch.sigmoid(self.model.layout.binary_logits(outputs))
        if self.calibration is not None:
            probabilities = self.calibration(probabilities)
        embedding = F.normalize(features.flatten(1), dim=1)
        if not self.others:
            return probabilities, embedding
        decoded = self.model.layout.decode(outputs)
        values = [
            decoded[a.name] if a.kind == "categorical" else decoded[a.name].unsqueeze(1)
            for a in self.others
        ]
        return probabilities, embedding, torch.cat(values, dim=1)


@dataclass(frozen=True)
class NetworkOutputs:
    """What a prediction backend gives for a batch of ``N`` faces, as float32 arrays."""

    probabilities: np.ndarray
    """``(N, K)`` P(present) of the binary attributes."""
    embedding: np.ndarray
    """``(N, D)`` L2-normalised backbone features."""
    values: np.ndarray
    """``(N, V)`` the numeric and categorical attributes (:func:`value_slices`); ``(N, 0)`` for
    a binary-only model."""

    @classmethod
    def of(cls, outputs: Sequence[torch.Tensor | np.ndarray]) -> NetworkOutputs:
        """The outputs of a :class:`PredictionGraph` (two or three), in its order."""
        arrays = [
            (o.detach().float().cpu().numpy() if isinstance(o, torch.Tensor) else np.asarray(o))
            for o in outputs
        ]
        values = arrays[2] if len(arrays) > 2 else np.zeros((len(arrays[0]), 0), np.float32)
        return cls(arrays[0], arrays[1], values)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probabilities, embedding and values."""
        return self.probabilities, self.embedding, self.values


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
    model has a calibration, ``embedding`` and, for numeric or categorical attributes,
    ``values``: :class:`PredictionGraph`'s) and its
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
        output_names=list(graph.output_names),
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
        expected = NetworkOutputs.of(graph(example))
    actual = OnnxNetwork(out)(example)
    difference = max(
        float(np.abs(a - e).max(initial=0.0))
        for a, e in zip(actual.arrays(), expected.arrays(), strict=True)
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
        names = {output.name for output in self.session.get_outputs()}
        self.output_names = (*OUTPUT_NAMES, VALUES_NAME) if VALUES_NAME in names else OUTPUT_NAMES

    def __call__(self, images: torch.Tensor) -> NetworkOutputs:
        """The outputs of a normalised batch (``values`` only from files that have them)."""
        feed = {INPUT_NAME: images.detach().cpu().float().contiguous().numpy()}
        return NetworkOutputs.of(self.session.run(list(self.output_names), feed))


def load_onnx_description(path: str | Path) -> ModelDescription:
    """The model description written beside the ONNX file at ``path``."""
    json_path = description_path(path)
    if not json_path.is_file():
        raise FileNotFoundError(
            f"{json_path} is missing: an ONNX model needs the description that "
            "`faceattr export --onnx` writes beside it"
        )
    return ModelDescription.from_dict(read_json(json_path), str(json_path))

"""Robustness curves: a model's accuracy as a rotation, scale or shift is added at test time.

Seed 003 concluded that a model trained on aligned faces memorises where the mouth is and fails
once faces move, while an AFFACT-trained one holds up. A curve shows it at a glance: the same
faces, cropped as the model expects, then turned, scaled or shifted by a fixed amount. Each
transform is the AFFACT jitter matrix of training (``faceattr.geometry.jitter_matrix``) with one
value for every face, composed with the model's crop and resampled once by the evaluation
transform (``FaceTransform.eval_batch``)::

    faces = robustness_inputs(data, model.attributes, model.input_config.size, "test", limit=2000)
    curves = robustness_curves(model, faces, thresholds=description.thresholds)
    document["robustness"] = {kind: curve.to_dict() for kind, curve in curves.items()}
    figure = robustness_figure({"AFFACT": curves, "aligned only": other_curves})  # figures_ext

Faces given as source images and landmarks instead: ``FaceBatch(images,
torch.from_numpy(affact_alignment_matrix(landmarks, size)), labels)``. Pixels a transform pulls
in from outside the source repeat its border, as in training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm import tqdm

from faceattr.evaluation.thresholds import DEFAULT_THRESHOLD, apply_thresholds
from faceattr.geometry import AffactJitter, compose, jitter_matrix, sample_jitter
from faceattr.geometry.affine import Size, as_hw
from faceattr.models import AttributeModel
from faceattr.training.config import DataConfig
from faceattr.training.datamodule import FaceBatch, FaceDataModule
from faceattr.training.transform import FaceTransform

TRANSFORM_KINDS = ("rotation", "scale", "shift")
DEFAULT_VALUES: dict[str, tuple[float, ...]] = {
    "rotation": (-40.0, -30.0, -20.0, -10.0, 0.0, 10.0, 20.0, 30.0, 40.0),
    "scale": (0.7, 0.75, 0.8, 0.9, 1.0, 1.1, 1.2, 1.33, 1.4),
    "shift": (-0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15, 0.2),
}
UNITS = {
    "rotation": "degrees (clockwise)",
    "scale": "scale factor (>1 enlarges the face)",
    "shift": "shift right and down, fraction of the crop",
}
IDENTITY = {"rotation": 0.0, "scale": 1.0, "shift": 0.0}
"""The value of each kind that leaves the crop as it is."""


@dataclass(frozen=True)
class RobustnessCurve:
    """Accuracy of a model on the same faces under each value of one transform."""

    kind: str
    values: tuple[float, ...]
    attributes: tuple[str, ...]
    accuracy: NDArray[np.float64]
    """``(V, K)``: accuracy of each attribute at each value."""
    count: int
    """Faces evaluated at every value."""

    @property
    def mean_accuracy(self) -> NDArray[np.float64]:
        """``(V,)`` accuracy averaged over the attributes."""
        return self.accuracy.mean(axis=1)

    def accuracy_at(self, value: float) -> float:
        """Mean accuracy at ``value`` (one of :attr:`values`)."""
        matches = np.flatnonzero(np.isclose(self.values, value))
        if not matches.size:
            raise ValueError(f"{self.kind} curve has no value {value}; it has {self.values}")
        return float(self.mean_accuracy[matches[0]])

    def drop(self, values: Sequence[float]) -> float:
        """Mean accuracy without the transform minus the mean accuracy over ``values``."""
        transformed = np.mean([self.accuracy_at(v) for v in values])
        return self.accuracy_at(IDENTITY[self.kind]) - float(transformed)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: kind, unit, values, face count, mean and per-attribute accuracies."""
        return {
            "kind": self.kind,
            "unit": UNITS[self.kind],
            "values": list(self.values),
            "count": self.count,
            "mean_accuracy": self.mean_accuracy.tolist(),
            "accuracy": {
                name: self.accuracy[:, k].tolist() for k, name in enumerate(self.attributes)
            },
        }


def check_kind(kind: str) -> None:
    """Raise ``ValueError`` naming the known kinds when ``kind`` is not one of them."""
    if kind not in TRANSFORM_KINDS:
        raise ValueError(f"unknown transform {kind!r}; known: {', '.join(TRANSFORM_KINDS)}")


def transform_matrices(kind: str, value: float, count: int, out_size: Size) -> torch.Tensor:
    """``(count, 2, 3)`` float64 jitter matrices in crop pixels: the AFFACT jitter with every
    draw fixed, ``value`` for ``kind`` (compose them with the source -> crop matrices)."""
    check_kind(kind)
    if kind == "scale" and value <= 0:
        raise ValueError(f"a scale factor must be positive, got {value}")
    still = sample_jitter(count, AffactJitter.off(), out_size, torch.Generator())
    fixed = torch.full((count,), float(value), dtype=torch.float64)
    if kind == "rotation":
        params = replace(still, angle=fixed)
    elif kind == "scale":
        params = replace(still, scale=fixed)
    else:
        height, width = as_hw(out_size)
        crop = torch.tensor([width, height], dtype=torch.float64)
        params = replace(still, shift=fixed[:, None] * crop)
    return jitter_matrix(params, out_size)


def robustness_inputs(
    data: DataConfig,
    attributes: Sequence[str],
    out_size: Size,
    split: str = "test",
    limit: int | None = None,
    seed: int = 0,
) -> FaceBatch:
    """The faces of ``split`` (a seeded subset of ``limit``) as the trainer reads them: loose
    uint8 crops from the packed cache or decoded, their matrices to the model's ``out_size``
    crop (``data.crop``) and the labels of ``attributes``."""
    faces = FaceDataModule(data, attributes, out_size, seed).split(split, limit)
    return faces.dataset[faces.positions.tolist()]


def robustness_curve(
    model: AttributeModel,
    faces: FaceBatch,
    kind: str,
    values: Sequence[float] | None = None,
    thresholds: Sequence[float] | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> RobustnessCurve:
    """Accuracy of ``model`` on ``faces`` under each of ``values`` of transform ``kind``
    (default :data:`DEFAULT_VALUES`), deciding at ``thresholds`` ``(K,)`` (default 0.5), on the
    model's device."""
    check_kind(kind)
    chosen = tuple(float(v) for v in (DEFAULT_VALUES[kind] if values is None else values))
    if not chosen or not len(faces):
        raise ValueError("a robustness curve needs at least one value and one face")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if faces.labels.shape[1] != len(model.attributes):
        raise ValueError(
            f"faces carry {faces.labels.shape[1]} labels, the model {len(model.attributes)}"
        )
    device = next(model.parameters()).device
    cut = np.asarray(thresholds if thresholds is not None else DEFAULT_THRESHOLD, np.float64)
    transform = FaceTransform(model.input_config, AffactJitter.off())
    correct = np.zeros((len(chosen), len(model.attributes)), dtype=np.int64)
    starts = range(0, len(faces), batch_size)
    bar = tqdm(total=len(chosen) * len(starts), desc=f"robustness {kind}", disable=not progress)
    training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for v, value in enumerate(chosen):
                jitter = transform_matrices(kind, value, len(faces), model.input_config.size)
                for start in starts:
                    rows = slice(start, start + batch_size)
                    crops = compose(jitter[rows], faces.crops[rows])
                    batch = FaceBatch(faces.images[rows], crops, faces.labels[rows])
                    inputs, targets = transform.eval_batch(batch.to(device))
                    scores = model.probabilities(inputs).float().cpu().numpy()
                    right = apply_thresholds(scores, cut) == targets.cpu().numpy()
                    correct[v] += right.sum(axis=0)
                    bar.update()
    finally:
        model.train(training)
        bar.close()
    return RobustnessCurve(
        kind=kind,
        values=chosen,
        attributes=model.attributes,
        accuracy=correct / len(faces),
        count=len(faces),
    )


def robustness_curves(
    model: AttributeModel,
    faces: FaceBatch,
    values: Mapping[str, Sequence[float]] = DEFAULT_VALUES,
    thresholds: Sequence[float] | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> dict[str, RobustnessCurve]:
    """One :func:`robustness_curve` per transform kind of ``values``, keyed by kind."""
    return {
        kind: robustness_curve(model, faces, kind, grid, thresholds, batch_size, progress)
        for kind, grid in values.items()
    }

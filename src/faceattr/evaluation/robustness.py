"""Robustness curves: a model's accuracy as a rotation, scale or shift is added at test time.

Seed 003 concluded that a model trained on aligned faces memorises where the mouth is and fails
once faces move, while an AFFACT-trained one holds up. A curve shows it at a glance: the same
faces, cropped as the model expects, then turned, scaled or shifted by a fixed amount. Each
transform is the AFFACT jitter matrix of training (``faceattr.geometry.jitter_matrix``) with one
value for every face, composed with the model's crop and resampled once by the evaluation
transform (``FaceTransform.eval_batch``)::

    faces = robustness_inputs(data, model.attributes, model.input_config.size, "test", limit=2000)
    curves = robustness_curves(model, faces, thresholds=description.thresholds)  # by kind
    document["robustness"] = {kind: curve.to_dict() for kind, curve in curves.items()}
    figure = robustness_figure({"AFFACT": curves, "aligned only": other_curves})  # figures_ext

Faces given as source images and landmarks instead: ``[FaceBatch(images,
torch.from_numpy(affact_alignment_matrix(landmarks, size)), labels)]``. Pixels a transform pulls
in from outside the source repeat its border, as in training.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import DataLoader
from tqdm import tqdm

from faceattr.evaluation.thresholds import DEFAULT_THRESHOLD, apply_thresholds
from faceattr.geometry import AffactJitter, compose, jitter_matrix, sample_jitter
from faceattr.geometry.affine import Size, as_hw
from faceattr.models import AttributeModel
from faceattr.training.batch import FaceBatch
from faceattr.training.config import DataConfig
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

    def row(self, value: float) -> int:
        """The index of ``value`` in :attr:`values`."""
        matches = np.flatnonzero(np.isclose(self.values, value))
        if not matches.size:
            raise ValueError(f"{self.kind} curve has no value {value}; it has {self.values}")
        return int(matches[0])

    def accuracy_at(self, value: float) -> float:
        """Mean accuracy at ``value`` (one of :attr:`values`)."""
        return float(self.mean_accuracy[self.row(value)])

    def attribute_drop(self, values: Sequence[float]) -> NDArray[np.float64]:
        """``(K,)`` accuracy without the transform minus the mean accuracy over ``values``."""
        rows = [self.row(v) for v in values]
        return self.accuracy[self.row(IDENTITY[self.kind])] - self.accuracy[rows].mean(axis=0)

    def drop(self, values: Sequence[float]) -> float:
        """:meth:`attribute_drop` averaged over the attributes."""
        return float(self.attribute_drop(values).mean())

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
) -> DataLoader[FaceBatch]:
    """Batches of the faces of ``split`` (a seeded subset of ``limit``) as evaluation reads
    them: loose uint8 crops from the packed cache or decoded, their matrices to the model's
    ``out_size`` crop (``data.crop``) and the labels of ``attributes``; ``data.eval_batch_size``
    (else ``data.batch_size``) faces a batch, in file order."""
    from faceattr.training.datamodule import FaceDataModule  # Lightning: only when needed

    module = FaceDataModule(data, attributes, out_size, seed)
    return module.loader(module.split(split, limit), train=False)


def robustness_curves(
    model: AttributeModel,
    batches: Iterable[FaceBatch],
    values: Mapping[str, Sequence[float]] = DEFAULT_VALUES,
    thresholds: Sequence[float] | None = None,
    progress: bool = True,
) -> dict[str, RobustnessCurve]:
    """Accuracy of ``model`` on the faces of ``batches`` under each value of each transform kind
    of ``values`` (kind -> values), deciding at ``thresholds`` ``(K,)`` (default 0.5), on the
    model's device; each batch is read once. Returns the curves by kind."""
    grids = {kind: tuple(float(v) for v in grid) for kind, grid in values.items()}
    for kind, grid in grids.items():
        check_kind(kind)
        if not grid:
            raise ValueError(f"no values for the {kind} curve")
    device = next(model.parameters()).device
    cut = np.asarray(thresholds if thresholds is not None else DEFAULT_THRESHOLD, np.float64)
    transform = FaceTransform(model.input_config, AffactJitter.off())
    size = model.input_config.size
    correct = {
        kind: np.zeros((len(grid), len(model.attributes)), np.int64) for kind, grid in grids.items()
    }
    count = 0
    training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in tqdm(batches, desc="robustness", disable=not progress):
                if batch.labels.shape[1] != len(model.attributes):
                    raise ValueError(
                        f"faces carry {batch.labels.shape[1]} labels, the model "
                        f"{len(model.attributes)}"
                    )
                batch = batch.to(device)
                truth = batch.labels.cpu().numpy()
                for kind, grid in grids.items():
                    for v, value in enumerate(grid):
                        jitter = transform_matrices(kind, value, len(batch), size)
                        moved = FaceBatch(batch.images, compose(jitter, batch.crops), batch.labels)
                        scores = model.probabilities(transform.eval_batch(moved)[0])
                        decisions = apply_thresholds(scores.float().cpu().numpy(), cut)
                        correct[kind][v] += (decisions == truth).sum(axis=0)
                count += len(batch)
    finally:
        model.train(training)
    if not count:
        raise ValueError("no faces to draw robustness curves on")
    return {
        kind: RobustnessCurve(kind, grid, model.attributes, correct[kind] / count, count)
        for kind, grid in grids.items()
    }

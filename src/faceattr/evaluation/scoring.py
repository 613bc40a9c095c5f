"""Run a model over a materialised protocol set in batches: per-view probabilities and decisions.

The stored crops are already at the model's input size (``faceattr data protocols --size``), so a
batch only goes uint8 HWC -> float [0, 1] CHW -> grayscale where the model wants it ->
normalised. Protocol C gives ten views per image; its probability is the mean over the views and
its decision the majority vote of the views (:func:`faceattr.evaluation.protocols.majority_vote`),
each view voting with the attribute's own threshold.

Categorical and numeric attributes (:class:`KindScores`) have no threshold: their class
probabilities or values are averaged over the views, and the most probable class or the mean value
is the prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm import tqdm

from faceattr.data.baselines import LabelArray
from faceattr.data.schema import Attribute, Schema, shared_names
from faceattr.evaluation.protocols import ProtocolSet, majority_vote
from faceattr.evaluation.thresholds import ThresholdArray, apply_thresholds
from faceattr.models import AttributeModel, InputConfig, cpu_batches
from faceattr.training.transform import to_grayscale


@dataclass(frozen=True)
class KindScores:
    """A model's categorical and numeric outputs on one protocol set, rows as its
    :class:`ProtocolScores`'."""

    attributes: tuple[Attribute, ...]
    """The model's categorical and numeric attributes that the dataset labels too."""
    labels: NDArray[np.float32]
    """``(N, J)``: the model's class index or the value in its unit; NaN: missing."""
    views: dict[str, NDArray[np.float32]]
    """Per attribute ``(N, V, C)`` class probabilities or ``(N, V)`` values."""

    def estimates(self) -> NDArray[np.float64]:
        """``(N, J)`` predictions: the most probable class of the views' mean probabilities, or
        the views' mean value."""
        columns = [self.views[a.name].mean(axis=1, dtype=np.float64) for a in self.attributes]
        return np.stack(
            [
                c.argmax(axis=1).astype(np.float64) if a.kind == "categorical" else c
                for a, c in zip(self.attributes, columns, strict=True)
            ],
            axis=1,
        )


def model_labels(labels: NDArray[np.float32], data: Attribute, model: Attribute) -> NDArray[Any]:
    """A dataset attribute's labels in the model's coordinates: its class indices mapped by class
    name (``ValueError`` for a kind that differs, or a class the model lacks), values as they
    are."""
    if data.kind != model.kind:
        raise ValueError(f"{model.name} is {model.kind} in the model, {data.kind} in the dataset")
    if model.kind != "categorical" or data.classes == model.classes:
        return labels
    unknown = [c for c in data.classes if c not in model.classes]
    if unknown:
        raise ValueError(f"{model.name}: the model has no class {', '.join(map(repr, unknown))}")
    mapping = np.array([model.classes.index(c) for c in data.classes], dtype=np.float32)
    known = ~np.isnan(labels)
    out = np.full_like(labels, np.nan)
    out[known] = mapping[labels[known].astype(np.int64)]
    return out


@dataclass(frozen=True)
class ProtocolScores:
    """A model's probabilities on one protocol set, rows in the set's order."""

    name: str
    attributes: tuple[str, ...]
    image_ids: NDArray[np.str_]
    labels: LabelArray
    """``(N, K)`` labels of ``attributes``: those the model and the dataset share."""
    view_probabilities: NDArray[np.float32]
    """``(N, V, K)``: V = 10 for protocol C, else 1."""
    rows: NDArray[np.intp] | None = None
    """The protocol rows scored (those with every label of ``attributes``); None: all."""
    kinds: KindScores | None = None
    """The categorical and numeric attributes' outputs (None: the model has none to score)."""

    @property
    def probabilities(self) -> NDArray[np.float32]:
        """``(N, K)`` probability per image: the mean over its views."""
        return self.view_probabilities.mean(axis=1, dtype=np.float64).astype(np.float32)

    def decisions(self, thresholds: ThresholdArray) -> LabelArray:
        """``(N, K)`` uint8 decisions at ``thresholds`` ``(K,)``: one view's probability above
        its threshold, or the majority vote of several views (ties: the mean score)."""
        if self.view_probabilities.shape[1] == 1:
            return apply_thresholds(self.view_probabilities[:, 0], thresholds)
        margins = self.view_probabilities.astype(np.float64) - np.asarray(thresholds)
        return majority_vote(margins, threshold=0.0)


def resolve_device(device: str) -> torch.device:
    """``"auto"``: the GPU when there is one, else the CPU; anything else as torch reads it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def views_to_input(views: torch.Tensor, config: InputConfig) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 crops -> the normalised float batch ``(B, C, H, W)`` of ``config``."""
    images = views.permute(0, 3, 1, 2).float().div_(255.0)
    if config.grayscale:
        images = to_grayscale(images)
        if config.channels == 3:
            images = images.expand(-1, 3, -1, -1)
    return config.normalize(images)


def shared_columns(
    model: Sequence[str], data: Sequence[str], aliases: Mapping[str, str] | None = None
) -> tuple[tuple[str, ...], list[int], list[int]]:
    """The attributes a model and a dataset share by name (``aliases``: dataset name -> model
    name), with their model and dataset columns; a ``ValueError`` when they share none."""
    pairs = shared_names(model, data, aliases)
    if not pairs:
        raise ValueError(
            f"the model ({', '.join(model[:5])}, ...) and the dataset ({', '.join(data[:5])}, ...) "
            "share no attribute name (an alias map renames them: --alias DATA=MODEL)"
        )
    names = tuple(pairs)
    return names, [list(model).index(n) for n in names], [list(data).index(pairs[n]) for n in names]


def score_protocol(
    model: AttributeModel,
    protocol: ProtocolSet,
    batch_size: int = 256,
    device: str = "auto",
    progress: bool = True,
    aliases: Mapping[str, str] | None = None,
    data_schema: Schema | None = None,
) -> ProtocolScores:
    """Probabilities of ``model`` on every view of ``protocol`` (``batch_size`` views a batch,
    run through the model :data:`~faceattr.models.CPU_BATCH` at a time on a CPU), for the
    binary attributes model and dataset share (:func:`shared_columns`); images lacking one of
    their labels are left out. The shared categorical and numeric attributes' outputs go into
    ``kinds`` (``data_schema``, the dataset's, maps their labels to the model's classes; None:
    binary attributes)."""
    names, model_columns, data_columns = shared_columns(
        model.attributes, protocol.attributes, aliases
    )
    schema = model.schema
    others = [k for k, n in enumerate(names) if schema[n].kind != "binary"]
    if others:
        kind_names = [names[k] for k in others]
        kind_data = [data_columns[k] for k in others]
        keep = [k for k in range(len(names)) if k not in others]
        names = tuple(names[k] for k in keep)
        data_columns = [data_columns[k] for k in keep]
    binary_names = [a.name for a in schema.attributes if a.kind == "binary"]
    model_columns = [binary_names.index(n) for n in names]  # columns of the binary scores
    if batch_size <= 0:
        raise ValueError(f"batch size must be positive, got {batch_size}")
    size = model.input_config.size
    if size != (protocol.size, protocol.size):
        raise ValueError(
            f"protocol {protocol.name} holds {protocol.size}x{protocol.size} crops but the model "
            f"expects {size[0]}x{size[1]}: materialise the protocols at the model's input size"
        )
    target = resolve_device(device)
    model = model.to(target).eval()
    per_batch = max(1, batch_size // protocol.views)
    chunks: list[np.ndarray] = []
    kind_chunks: dict[str, list[np.ndarray]] = {n: [] for n in schema.names}
    starts = range(0, len(protocol), per_batch)
    with torch.inference_mode():
        for start in tqdm(starts, desc=f"protocol {protocol.name}", disable=not progress):
            views = protocol.batch(slice(start, start + per_batch))  # (B, V, S, S, 3)
            flat = torch.tensor(views.reshape(-1, *views.shape[2:]), device=target)
            inputs = views_to_input(flat, model.input_config)
            if model.layout.binary_only:
                scores = torch.cat([model.probabilities(part) for part in cpu_batches(inputs)])
            else:
                decoded = model.decode(torch.cat([model(part) for part in cpu_batches(inputs)]))
                for name, values in decoded.items():
                    shape = (len(views), protocol.views, *values.shape[1:])
                    kind_chunks[name].append(values.float().cpu().numpy().reshape(shape))
                binary = [decoded[n] for n in binary_names]
                scores = torch.stack(binary, 1) if binary else torch.zeros(len(inputs), 0)
            shape = (len(views), protocol.views, len(binary_names))
            chunks.append(scores.float().cpu().numpy().reshape(shape))
    labels = protocol.labels[:, data_columns]
    known = ~np.isnan(labels).any(axis=1)
    probabilities = np.concatenate(chunks).astype(np.float32)[:, :, model_columns]
    kinds = None
    if others:
        data_attributes = data_schema or Schema.binary(protocol.attributes)
        kinds = KindScores(
            attributes=tuple(schema[n] for n in kind_names),
            labels=np.stack(
                [
                    model_labels(
                        protocol.labels[known, d], data_attributes.attributes[d], schema[n]
                    )
                    for n, d in zip(kind_names, kind_data, strict=True)
                ],
                axis=1,
            ).astype(np.float32),
            views={n: np.concatenate(kind_chunks[n])[known] for n in kind_names},
        )
    return ProtocolScores(
        name=protocol.name,
        attributes=names,
        image_ids=np.asarray(protocol.image_ids, dtype=str)[known],
        labels=np.ascontiguousarray(labels[known], dtype=np.uint8),
        view_probabilities=np.ascontiguousarray(probabilities[known]),
        rows=None if known.all() else np.flatnonzero(known),
        kinds=kinds,
    )

"""Run a model over a materialised protocol set in batches: per-view probabilities and decisions.

The stored crops are already at the model's input size (``faceattr data protocols --size``), so a
batch only goes uint8 HWC -> float [0, 1] CHW -> grayscale where the model wants it ->
normalised. Protocol C gives ten views per image; its probability is the mean over the views and
its decision the majority vote of the views (:func:`faceattr.evaluation.protocols.majority_vote`),
each view voting with the attribute's own threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm import tqdm

from faceattr.data.baselines import LabelArray
from faceattr.data.schema import shared_names
from faceattr.evaluation.protocols import ProtocolSet, majority_vote
from faceattr.evaluation.thresholds import ThresholdArray, apply_thresholds
from faceattr.models import AttributeModel, InputConfig, cpu_batches
from faceattr.training.transform import to_grayscale


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
) -> ProtocolScores:
    """Probabilities of ``model`` on every view of ``protocol`` (``batch_size`` views a batch,
    run through the model :data:`~faceattr.models.CPU_BATCH` at a time on a CPU), for the
    attributes model and dataset share (:func:`shared_columns`); images lacking one of their
    labels are left out."""
    names, model_columns, data_columns = shared_columns(
        model.attributes, protocol.attributes, aliases
    )
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
    starts = range(0, len(protocol), per_batch)
    with torch.inference_mode():
        for start in tqdm(starts, desc=f"protocol {protocol.name}", disable=not progress):
            views = protocol.batch(slice(start, start + per_batch))  # (B, V, S, S, 3)
            flat = torch.tensor(views.reshape(-1, *views.shape[2:]), device=target)
            inputs = views_to_input(flat, model.input_config)
            scores = torch.cat([model.probabilities(part) for part in cpu_batches(inputs)])
            chunks.append(scores.float().cpu().numpy().reshape(len(views), protocol.views, -1))
    labels = protocol.labels[:, data_columns]
    known = ~np.isnan(labels).any(axis=1)
    probabilities = np.concatenate(chunks).astype(np.float32)[:, :, model_columns]
    return ProtocolScores(
        name=protocol.name,
        attributes=names,
        image_ids=np.asarray(protocol.image_ids, dtype=str)[known],
        labels=np.ascontiguousarray(labels[known], dtype=np.uint8),
        view_probabilities=np.ascontiguousarray(probabilities[known]),
        rows=None if known.all() else np.flatnonzero(known),
    )

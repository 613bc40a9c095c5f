"""Multi-attribute losses: one entry point, :class:`AttributeLoss`, for every seed.

Per attribute ``k`` the loss ``L_k`` is the batch mean of binary cross-entropy on logits, with an
optional positive-class weight (seed 004's class weights); then the attributes are combined with
task weights ``w_k`` (seed 000):

- ``reduction="sum"``: ``sum_k w_k L_k``, Keras' ``loss_weights``, exactly seed 000's
  ``10 L_gender + 5 L_eyeglasses + 5 L_beard + 5 L_bald + L_mustache + L_hat``;
- ``reduction="mean"``: ``sum_k w_k L_k / sum_k w_k``; unweighted, this is
  ``BCEWithLogitsLoss()`` over the ``(N, K)`` matrix (seeds 001-004).

A ``"softmax2"`` head (seed 000's 2-way softmax per attribute) is the same loss: the categorical
cross-entropy of ``softmax([z0, z1])`` equals binary cross-entropy on the logit ``z1 - z0``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from faceattr.models.base import HEAD_TYPES, binary_logits

TASK_WEIGHT_PRESETS: dict[str, dict[str, float]] = {
    "facenet": {
        "Male": 10.0,
        "Eyeglasses": 5.0,
        "No_Beard": 5.0,
        "Bald": 5.0,
        "Mustache": 1.0,
        "Wearing_Hat": 1.0,
    },
    "facenet-bis": {
        "Eyeglasses": 5.0,
        "No_Beard": 5.0,
        "Bald": 5.0,
        "Mustache": 1.0,
        "Wearing_Hat": 1.0,
    },
}
"""Seed 000's task weights, as ``{attribute: weight}`` (use with ``reduction="sum"``)."""

REDUCTIONS = ("mean", "sum")


def task_weight_preset(name: str) -> dict[str, float]:
    """A copy of the preset ``name`` of :data:`TASK_WEIGHT_PRESETS`."""
    if name not in TASK_WEIGHT_PRESETS:
        known = ", ".join(TASK_WEIGHT_PRESETS)
        raise KeyError(f"unknown task weight preset {name!r}; known: {known}")
    return dict(TASK_WEIGHT_PRESETS[name])


def pos_weight_from_labels(labels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Positive-class weights ``negatives / positives`` per attribute from training labels
    ``(N, K)`` in {0, 1} (or CelebA's {-1, 1}; NaN: missing, not counted); seed 004's class
    weights "inversely proportional to the class frequencies", in the form
    ``BCEWithLogitsLoss(pos_weight=...)`` takes."""
    values = torch.as_tensor(np.asarray(labels), dtype=torch.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"labels must be a non-empty (N, K) matrix, got {tuple(values.shape)}")
    known = ~torch.isnan(values)
    if ((values != 0) & (values != 1) & (values != -1) & known).any():
        raise ValueError("labels must be 0/1 or -1/1")
    positives = (values == 1).sum(dim=0)
    negatives = known.sum(dim=0) - positives
    if (positives == 0).any():
        columns = torch.nonzero(positives == 0).flatten().tolist()
        raise ValueError(f"no positive label in columns {columns}: their weight is undefined")
    return (negatives / positives).to(torch.float32)


class AttributeLoss(nn.Module):
    """Weighted multi-attribute cross-entropy for a model's outputs and ``(N, K)`` 0/1 targets;
    a NaN target (a label the image lacks) adds nothing to its attribute's loss.

    ``attributes`` name the K output columns (any subset of CelebA's, in the model's order);
    ``task_weights`` maps some of them to weights (others weigh 1; default all 1);
    ``pos_weight`` is one positive-class weight per attribute (see :func:`pos_weight_from_labels`).
    """

    def __init__(
        self,
        attributes: Sequence[str],
        head_type: str = "sigmoid",
        task_weights: Mapping[str, float] | None = None,
        pos_weight: torch.Tensor | Sequence[float] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        names = tuple(attributes)
        if head_type not in HEAD_TYPES:
            raise ValueError(f"unknown head type {head_type!r}; known: {', '.join(HEAD_TYPES)}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduction!r}; known: {', '.join(REDUCTIONS)}")
        weights = dict(task_weights or {})
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise KeyError(f"task weights for attributes the model lacks: {unknown}")
        if any(w < 0 for w in weights.values()):
            raise ValueError(f"task weights must be non-negative: {weights}")
        task = torch.tensor([float(weights.get(n, 1.0)) for n in names])
        if task.sum() <= 0:
            raise ValueError("task weights sum to zero")
        self.attributes = names
        self.head_type = head_type
        self.reduction = reduction
        self.task_weights: torch.Tensor
        self.register_buffer("task_weights", task)
        self.pos_weight: torch.Tensor | None
        if pos_weight is None:
            self.register_buffer("pos_weight", None)
        else:
            pw = torch.as_tensor(pos_weight, dtype=torch.float32).flatten()
            if pw.numel() != len(names):
                raise ValueError(f"pos_weight has {pw.numel()} values for {len(names)} attributes")
            self.register_buffer("pos_weight", pw)

    def per_attribute(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Unweighted-by-task loss ``L_k`` of each attribute, ``(K,)`` (for logging)."""
        logits = binary_logits(outputs, self.head_type)
        if targets.shape != logits.shape:
            raise ValueError(
                f"targets {tuple(targets.shape)} do not match outputs for "
                f"{len(self.attributes)} attributes {tuple(logits.shape)}"
            )
        pos_weight = None if self.pos_weight is None else self.pos_weight.to(logits)
        targets = targets.to(logits.dtype)
        known = ~torch.isnan(targets)
        losses = F.binary_cross_entropy_with_logits(
            logits, torch.where(known, targets, 0.0), pos_weight=pos_weight, reduction="none"
        )
        losses = torch.where(known, losses, 0.0)
        return losses.sum(dim=0) / known.sum(dim=0).clamp(min=1)

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The scalar training loss."""
        per_attribute = self.per_attribute(outputs, targets)
        weights = self.task_weights.to(per_attribute.dtype)
        total = (weights * per_attribute).sum()
        return total / weights.sum() if self.reduction == "mean" else total

"""Multi-attribute losses: one entry point, :class:`AttributeLoss`, for every seed and kind.

Per attribute ``k`` the loss ``L_k`` is a mean over the images that carry its label (a NaN label
adds nothing, never a made-up value), by kind:

- ``binary``: binary cross-entropy on its logit, with an optional positive-class weight (seed
  004's class weights);
- ``categorical``: cross-entropy of the softmax over its classes, each image weighted by its
  class's optional weight;
- ``numeric``: DLDL-v2 (Gao et al., "Age Estimation Using Expectation of Label Distribution
  Learning", IJCAI 2018): ``KL(q || p) + |E_p - y|``, where ``p`` is the softmax over the
  attribute's unit bins ``low..high``, ``q`` the label distribution (a Gaussian of ``sigma`` units
  around the label ``y``, normalised over the bins) and ``E_p`` the expectation (the prediction,
  in the attribute's unit). Labels outside ``low..high`` are clipped to it.

Then the attributes are combined with weights ``w_k`` = task weight (seed 000) x the weight of
the attribute's kind (``kind_weights``, default 1 each):

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
from faceattr.models.outputs import Attributes, OutputLayout, as_schema

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
NUMERIC_SIGMA = 2.0
"""Standard deviation, in the attribute's unit, of a numeric label's distribution (DLDL uses 2
years for age)."""


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


def class_weights_from_labels(labels: torch.Tensor | np.ndarray, num_classes: int) -> torch.Tensor:
    """Per-class weights ``n / (C n_c)`` from one categorical column of training class indices
    (NaN: missing, not counted): scikit-learn's ``class_weight="balanced"``; a class without
    examples weighs 0."""
    values = np.asarray(labels, dtype=np.float64).ravel()
    known = values[~np.isnan(values)].astype(np.int64)
    if known.size == 0:
        raise ValueError("no known label: class weights are undefined")
    counts = np.bincount(known, minlength=num_classes).astype(np.float64)
    weights = np.divide(
        known.size, num_classes * counts, out=np.zeros(num_classes), where=counts > 0
    )
    return torch.as_tensor(weights, dtype=torch.float32)


def label_distribution(targets: torch.Tensor, bins: torch.Tensor, sigma: float) -> torch.Tensor:
    """``(N, B)``: a Gaussian of ``sigma`` around each target ``(N,)``, normalised over ``bins``."""
    logq = -((bins[None, :] - targets[:, None]) ** 2) / (2 * sigma**2)
    return torch.softmax(logq, dim=1)


class AttributeLoss(nn.Module):
    """Weighted multi-attribute loss for a model's outputs and ``(N, K)`` targets in label
    coordinates (0/1, a class index, a number); a NaN target (a label the image lacks) adds
    nothing to its attribute's loss.

    ``attributes`` are the model's (names: binary; or its :class:`~faceattr.data.schema.Schema`);
    ``task_weights`` maps some of them to weights (others weigh 1; default all 1);
    ``kind_weights`` maps ``binary``/``categorical``/``numeric`` to a factor on those weights;
    ``pos_weight`` is one positive-class weight per *binary* attribute, in order (see
    :func:`pos_weight_from_labels`); ``class_weights`` maps a categorical attribute to one weight
    per class; ``sigma`` is the numeric label distribution's width (:data:`NUMERIC_SIGMA`).
    """

    def __init__(
        self,
        attributes: Attributes,
        head_type: str = "sigmoid",
        task_weights: Mapping[str, float] | None = None,
        pos_weight: torch.Tensor | Sequence[float] | None = None,
        reduction: str = "mean",
        kind_weights: Mapping[str, float] | None = None,
        class_weights: Mapping[str, torch.Tensor | Sequence[float]] | None = None,
        sigma: float = NUMERIC_SIGMA,
    ) -> None:
        super().__init__()
        schema = as_schema(attributes)
        names = schema.names
        if head_type not in HEAD_TYPES:
            raise ValueError(f"unknown head type {head_type!r}; known: {', '.join(HEAD_TYPES)}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown reduction {reduction!r}; known: {', '.join(REDUCTIONS)}")
        weights = dict(task_weights or {})
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise KeyError(f"task weights for attributes the model lacks: {unknown}")
        kinds = dict(kind_weights or {})
        unknown = sorted(set(kinds) - {"binary", "categorical", "numeric"})
        if unknown:
            raise KeyError(f"kind weights for unknown kinds: {unknown}")
        if any(w < 0 for w in [*weights.values(), *kinds.values()]):
            raise ValueError(f"task and kind weights must be non-negative: {weights} {kinds}")
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        task = torch.tensor(
            [float(weights.get(a.name, 1.0)) * kinds.get(a.kind, 1.0) for a in schema.attributes]
        )
        if task.sum() <= 0:
            raise ValueError("task weights sum to zero")
        self.schema = schema
        self.layout = OutputLayout(schema)
        self.attributes = names
        self.head_type = head_type
        self.reduction = reduction
        self.sigma = float(sigma)
        self.binary = self.layout.columns("binary")
        self.task_weights: torch.Tensor
        self.register_buffer("task_weights", task)
        self.pos_weight: torch.Tensor | None
        if pos_weight is None:
            self.register_buffer("pos_weight", None)
        else:
            pw = torch.as_tensor(pos_weight, dtype=torch.float32).flatten()
            if pw.numel() != len(self.binary):
                raise ValueError(
                    f"pos_weight has {pw.numel()} values for {len(self.binary)} binary attributes"
                )
            self.register_buffer("pos_weight", pw)
        self.class_weights: dict[str, torch.Tensor] = {}
        for name, values in (class_weights or {}).items():
            self.set_class_weights(name, torch.as_tensor(values, dtype=torch.float32))

    def set_class_weights(self, name: str, weights: torch.Tensor) -> None:
        """Weigh each image of categorical attribute ``name`` by its class's weight."""
        attribute = self.schema[name]
        if attribute.kind != "categorical" or weights.numel() != len(attribute.classes):
            raise ValueError(
                f"class weights of {name}: {weights.numel()} values for a {attribute.kind} "
                f"attribute{f' of {len(attribute.classes)} classes' if attribute.classes else ''}"
            )
        self.class_weights[name] = weights.flatten()

    def weights_from_labels(self, labels: torch.Tensor | np.ndarray) -> None:
        """Class weights from training ``labels`` ``(N, K)``: positive-class weights for the
        binary attributes, ``"balanced"`` weights for the categorical ones."""
        values = np.asarray(labels, dtype=np.float32)
        if self.binary:
            self.pos_weight = pos_weight_from_labels(values[:, self.binary])
        for k in self.layout.columns("categorical"):
            attribute = self.schema.attributes[k]
            self.set_class_weights(
                attribute.name, class_weights_from_labels(values[:, k], len(attribute.classes))
            )

    def per_attribute(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Unweighted-by-task loss ``L_k`` of each attribute, ``(K,)`` (for logging)."""
        flat = binary_logits(outputs, self.head_type)
        if targets.ndim != 2 or targets.shape != (flat.shape[0], len(self.attributes)):
            raise ValueError(
                f"targets {tuple(targets.shape)} do not match outputs for "
                f"{len(self.attributes)} attributes {tuple(flat.shape)}"
            )
        if self.layout.binary_only:
            return self._binary(flat, targets.to(flat.dtype))
        flat, targets = flat.float(), targets.float()  # class indices and values stay exact
        binary = iter(self._binary(self.layout.binary_logits(flat), targets[:, self.binary]))
        losses: list[torch.Tensor] = []
        for k, (attribute, logits) in enumerate(
            zip(self.schema.attributes, self.layout.split(flat), strict=True)
        ):
            column = targets[:, k]
            known = ~torch.isnan(column)
            if attribute.kind == "binary":
                losses.append(next(binary))
            elif not known.any():
                losses.append(flat.new_zeros(()))
            elif attribute.kind == "categorical":
                losses.append(self._categorical(attribute.name, logits[known], column[known]))
            else:
                losses.append(self._numeric(attribute.name, logits[known], column[known]))
        return torch.stack(losses)

    def _binary(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        pos_weight = None if self.pos_weight is None else self.pos_weight.to(logits)
        known = ~torch.isnan(targets)
        losses = F.binary_cross_entropy_with_logits(
            logits, torch.where(known, targets, 0.0), pos_weight=pos_weight, reduction="none"
        )
        losses = torch.where(known, losses, 0.0)
        return losses.sum(dim=0) / known.sum(dim=0).clamp(min=1)

    def _categorical(self, name: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        classes = targets.long()
        losses = F.cross_entropy(logits, classes, reduction="none")
        if name in self.class_weights:
            losses = losses * self.class_weights[name].to(logits)[classes]
        return losses.mean()

    def _numeric(self, name: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        bins = self.layout.bins[name].to(logits)
        targets = targets.clamp(float(bins[0]), float(bins[-1]))
        log_p = torch.log_softmax(logits, dim=1)
        q = label_distribution(targets, bins, self.sigma)
        kl = F.kl_div(log_p, q, reduction="none").sum(dim=1)
        expectation = log_p.exp() @ bins
        return (kl + (expectation - targets).abs()).mean()

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The scalar training loss."""
        per_attribute = self.per_attribute(outputs, targets)
        weights = self.task_weights.to(per_attribute.dtype)
        total = (weights * per_attribute).sum()
        return total / weights.sum() if self.reduction == "mean" else total

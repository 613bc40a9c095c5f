"""Per-attribute decision thresholds tuned on validation scores (seed 001).

An attribute is predicted present when its probability is strictly above its threshold (the rule
of ``torchmetrics`` at 0.5 and of :func:`faceattr.evaluation.protocols.majority_vote`).
:func:`tune_thresholds` sorts each attribute's scores once and evaluates every cut between two
distinct scores at once: cutting after the ``k`` highest scores gives ``TP_k`` (a cumulative sum of
the sorted labels), ``FP_k = k - TP_k``, F1 ``2 TP_k / (P + k)`` and accuracy
``(TP_k + negatives - FP_k) / N``. The chosen threshold is the midpoint between the last score
predicted positive and the next one; among cuts that score equally, the one nearest 0.5 wins.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np
from numpy.typing import NDArray

from faceattr.data.baselines import LabelArray, check_labels

Objective = Literal["f1", "accuracy"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)
DEFAULT_THRESHOLD = 0.5
ThresholdArray = NDArray[np.float64]


def apply_thresholds(probabilities: NDArray[np.floating], thresholds: ThresholdArray) -> LabelArray:
    """``(N, K)`` uint8 decisions: 1 where a probability is strictly above its attribute's
    threshold (``thresholds`` ``(K,)``, or a scalar)."""
    scores = np.asarray(probabilities, dtype=np.float64)
    return (scores > np.asarray(thresholds, dtype=np.float64)).astype(np.uint8)


def tune_thresholds(
    labels: LabelArray, probabilities: NDArray[np.floating], objective: Objective = "f1"
) -> ThresholdArray:
    """``(K,)`` thresholds that maximise ``objective`` ("f1" or "accuracy") of each attribute
    on ``labels`` ``(N, K)`` given ``probabilities`` ``(N, K)``."""
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose from {', '.join(OBJECTIVES)}")
    truth = check_labels(labels, "labels")
    scores = np.asarray(probabilities, dtype=np.float64)
    if scores.shape != truth.shape:
        raise ValueError(f"probabilities {scores.shape} and labels {truth.shape} differ in shape")
    if not np.isfinite(scores).all():
        raise ValueError("probabilities must be finite")
    n = scores.shape[0]
    order = np.argsort(-scores, axis=0, kind="stable")
    ranked = np.take_along_axis(scores, order, axis=0)  # (N, K), descending
    hits = np.take_along_axis(truth, order, axis=0).astype(np.int64)
    positives = hits.sum(axis=0)
    k = np.arange(n + 1)[:, None]  # cut after the k highest scores: (N + 1, K)
    tp = np.concatenate([np.zeros((1, scores.shape[1]), np.int64), hits.cumsum(axis=0)])
    if objective == "f1":
        value = np.divide(2.0 * tp, positives + k, out=np.zeros(tp.shape), where=positives + k > 0)
    else:
        value = (2 * tp + (n - positives) - k) / n
    # A cut between two equal scores cannot be expressed by a threshold.
    valid = np.ones(tp.shape, dtype=bool)
    valid[1:n] = ranked[:-1] > ranked[1:]
    cuts = np.concatenate(
        [ranked[:1], (ranked[:-1] + ranked[1:]) / 2.0, np.nextafter(ranked[-1:], -np.inf)]
    )
    value = np.where(valid, value, -np.inf)
    best = value >= value.max(axis=0) - 1e-12
    distance = np.where(best, np.abs(cuts - DEFAULT_THRESHOLD), np.inf)
    return np.take_along_axis(cuts, distance.argmin(axis=0)[None], axis=0)[0]

"""Constant-prediction baselines (seed 000): the majority and the minority estimator.

Both estimators learn one class per attribute from the *training* labels and predict it for every
target image: the majority estimator the most frequent class, the minority estimator the least
frequent one. A model that does not beat them has learnt nothing about that attribute.

F1 convention (seed 000): for every attribute the **positive class is its minority class in the
training labels** -- 1 ("attribute present") for rare attributes such as Bald or Mustache, but 0 for
common ones such as No_Beard (a beard is the rare event) or Young. A tie goes to the CelebA label
(majority 0, positive class 1). With this convention the majority estimator never predicts the
positive class, so its F1 is 0, and the minority estimator's F1 is ``2p / (1 + p)`` with ``p`` the
target frequency of the positive class: the floor a rare-attribute detector has to clear.
:attr:`BaselineScores.positive_class` carries the classes, so model scores can use the same one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

LabelArray = NDArray[np.uint8]
ScoreArray = NDArray[np.float64]


@dataclass(frozen=True)
class BaselineScores:
    """Per-attribute scores of the two constant estimators on one set of target labels."""

    names: tuple[str, ...]
    count: int  # number of target images scored
    positive_class: LabelArray  # (K,) the training-minority class: the positive class of F1
    majority_accuracy: ScoreArray  # (K,)
    majority_f1: ScoreArray  # (K,)
    minority_accuracy: ScoreArray  # (K,)
    minority_f1: ScoreArray  # (K,)

    @property
    def mean_majority_accuracy(self) -> float:
        """Majority-estimator accuracy averaged over the attributes."""
        return float(self.majority_accuracy.mean())

    @property
    def mean_majority_f1(self) -> float:
        """Majority-estimator F1 averaged over the attributes (0 by construction)."""
        return float(self.majority_f1.mean())

    @property
    def mean_minority_accuracy(self) -> float:
        """Minority-estimator accuracy averaged over the attributes."""
        return float(self.minority_accuracy.mean())

    @property
    def mean_minority_f1(self) -> float:
        """Minority-estimator F1 averaged over the attributes."""
        return float(self.minority_f1.mean())

    def records(self) -> list[dict[str, str | int | float]]:
        """One row per attribute (name, positive class, the four scores), ready for CSV or JSON."""
        return [
            {
                "attribute": name,
                "positive_class": int(self.positive_class[k]),
                "majority_accuracy": float(self.majority_accuracy[k]),
                "majority_f1": float(self.majority_f1[k]),
                "minority_accuracy": float(self.minority_accuracy[k]),
                "minority_f1": float(self.minority_f1[k]),
            }
            for k, name in enumerate(self.names)
        ]


def check_labels(labels: NDArray[np.generic], what: str) -> LabelArray:
    """``labels`` as a non-empty (N, K) uint8 0/1 array (a float 0/1 array, as datasets hold
    labels, is converted; a NaN, a missing label, is refused); raises ``ValueError`` naming
    ``what``."""
    array = np.asarray(labels)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{what}: expected a non-empty (N, K) array, got shape {array.shape}")
    if array.dtype.kind == "f":
        if np.isnan(array).any():
            raise ValueError(f"{what}: {int(np.isnan(array).sum())} labels are missing (NaN)")
        if ((array != 0) & (array != 1)).any():
            raise ValueError(f"{what}: labels must be 0 or 1")
        array = array.astype(np.uint8)
    if array.dtype != np.uint8:
        raise ValueError(f"{what}: expected uint8 labels, got {array.dtype}")
    if array.size and array.max() > 1:
        raise ValueError(f"{what}: labels must be 0 or 1, found {int(array.max())}")
    return array


def majority_predictions(train_labels: LabelArray) -> LabelArray:
    """(K,) the most frequent class of each attribute in ``train_labels`` (ties give 0)."""
    labels = check_labels(train_labels, "train labels")
    positives = labels.sum(axis=0, dtype=np.int64)
    return (2 * positives > labels.shape[0]).astype(np.uint8)


def minority_predictions(train_labels: LabelArray) -> LabelArray:
    """(K,) the least frequent class of each attribute in ``train_labels`` (the F1 positive)."""
    return 1 - majority_predictions(train_labels)


def per_attribute_accuracy(targets: LabelArray, predictions: LabelArray) -> ScoreArray:
    """(K,) accuracy of ``predictions``: (N, K), or (K,) for one constant class per attribute."""
    return np.asarray(targets == predictions, dtype=np.float64).mean(axis=0)


def per_attribute_f1(
    targets: LabelArray, predictions: LabelArray, positive_class: LabelArray
) -> ScoreArray:
    """(K,) F1 = 2TP / (2TP + FP + FN) of each column for its ``positive_class``; 0 when undefined.

    ``predictions`` is (N, K), or (K,) for one constant prediction per attribute.
    """
    actual = targets == positive_class
    predicted = np.broadcast_to(predictions == positive_class, actual.shape)
    true_positives = np.sum(actual & predicted, axis=0, dtype=np.int64)
    denominator = actual.sum(axis=0, dtype=np.int64) + predicted.sum(axis=0, dtype=np.int64)
    return np.divide(
        2.0 * true_positives,
        denominator,
        out=np.zeros(denominator.shape, dtype=np.float64),
        where=denominator > 0,
    )


def baseline_scores(
    train_labels: LabelArray, test_labels: LabelArray, names: tuple[str, ...] | list[str]
) -> BaselineScores:
    """Fit both constant estimators on ``train_labels`` and score them on ``test_labels``."""
    train = check_labels(train_labels, "train labels")
    test = check_labels(test_labels, "test labels")
    if train.shape[1] != test.shape[1] or len(names) != train.shape[1]:
        raise ValueError(
            f"attribute counts disagree: train {train.shape[1]}, test {test.shape[1]}, "
            f"names {len(names)}"
        )
    majority = majority_predictions(train)
    minority = 1 - majority
    return BaselineScores(
        names=tuple(names),
        count=test.shape[0],
        positive_class=minority,
        majority_accuracy=per_attribute_accuracy(test, majority),
        majority_f1=per_attribute_f1(test, majority, minority),
        minority_accuracy=per_attribute_accuracy(test, minority),
        minority_f1=per_attribute_f1(test, minority, minority),
    )

"""Scores of categorical and numeric attributes, and their constant baselines, with numpy.

Binary attributes are scored by :mod:`faceattr.evaluation.metrics` (thresholds apply to them
only). Here, for one attribute's labels (NaN: missing, left out) and predictions:

- categorical (class indices): accuracy, macro-F1, balanced accuracy and the confusion matrix,
  as scikit-learn's ``accuracy_score``, ``f1_score(average="macro")``,
  ``balanced_accuracy_score`` and ``confusion_matrix(labels=range(C))`` compute them (macro-F1
  averages over the classes in the labels or the predictions, an undefined F1 is 0; balanced
  accuracy averages the recall of the classes in the labels);
- numeric (values in the attribute's unit): MAE, RMSE and the cumulative score CS(l), the share
  of images within ``l`` units (5 years for age: CS(5)), the age-estimation literature's trio.

Baselines learn one constant from the *training* labels: the majority class, and the training
mean and median (the mean minimises squared error, the median absolute error).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

CS_TOLERANCE = 5.0
"""CS(l)'s default ``l``: 5 years, as age estimation reports it."""


@dataclass(frozen=True)
class CategoricalScores:
    """One categorical attribute's scores over ``count`` labelled images."""

    count: int
    accuracy: float
    macro_f1: float
    balanced_accuracy: float
    confusion: NDArray[np.int64]
    """``(C, C)``: row = true class, column = predicted class."""


@dataclass(frozen=True)
class NumericScores:
    """One numeric attribute's errors over ``count`` labelled images, in its unit."""

    count: int
    mae: float
    rmse: float
    cs: float
    """Share of images whose error is at most ``tolerance``."""
    tolerance: float


def _known(labels: ArrayLike, predicted: ArrayLike) -> tuple[NDArray[np.float64], ...]:
    truth = np.asarray(labels, dtype=np.float64).ravel()
    guess = np.asarray(predicted, dtype=np.float64).ravel()
    if truth.shape != guess.shape:
        raise ValueError(f"{truth.size} labels for {guess.size} predictions")
    known = ~np.isnan(truth)
    if not known.any():
        raise ValueError("no labelled image to score")
    return truth[known], guess[known]


def categorical_scores(
    labels: ArrayLike, predicted: ArrayLike, num_classes: int
) -> CategoricalScores:
    """Scores of predicted class indices against labels (NaN: missing)."""
    truth, guess = (v.astype(np.int64) for v in _known(labels, predicted))
    if truth.min() < 0 or guess.min() < 0 or max(truth.max(), guess.max()) >= num_classes:
        raise ValueError(f"class indices must be in 0..{num_classes - 1}")
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (truth, guess), 1)
    correct = np.diag(confusion).astype(np.float64)
    actual, chosen = confusion.sum(axis=1), confusion.sum(axis=0)
    seen = (actual + chosen) > 0
    f1 = np.divide(2 * correct, actual + chosen, out=np.zeros(num_classes), where=seen)
    recall = np.divide(correct, actual, out=np.zeros(num_classes), where=actual > 0)
    return CategoricalScores(
        count=int(truth.size),
        accuracy=float(correct.sum() / truth.size),
        macro_f1=float(f1[seen].mean()),
        balanced_accuracy=float(recall[actual > 0].mean()),
        confusion=confusion,
    )


def numeric_scores(
    labels: ArrayLike, predicted: ArrayLike, tolerance: float = CS_TOLERANCE
) -> NumericScores:
    """Errors of predicted values against labels (NaN: missing)."""
    truth, guess = _known(labels, predicted)
    error = np.abs(guess - truth)
    return NumericScores(
        count=int(truth.size),
        mae=float(error.mean()),
        rmse=float(np.sqrt((error**2).mean())),
        cs=float((error <= tolerance).mean()),
        tolerance=float(tolerance),
    )


def majority_class(train_labels: ArrayLike, num_classes: int) -> int:
    """The most frequent class of the training labels (the lowest index on a tie)."""
    values = np.asarray(train_labels, dtype=np.float64).ravel()
    known = values[~np.isnan(values)].astype(np.int64)
    if known.size == 0:
        raise ValueError("no training label")
    return int(np.bincount(known, minlength=num_classes).argmax())


def categorical_baseline(
    train_labels: ArrayLike, labels: ArrayLike, num_classes: int
) -> CategoricalScores:
    """Scores of always predicting the training majority class."""
    guess = np.full(np.asarray(labels).shape, majority_class(train_labels, num_classes))
    return categorical_scores(labels, guess, num_classes)


def numeric_baselines(
    train_labels: ArrayLike, labels: ArrayLike, tolerance: float = CS_TOLERANCE
) -> dict[str, NumericScores]:
    """``{"mean": ..., "median": ...}``: scores of always predicting the training mean or
    median."""
    values = np.asarray(train_labels, dtype=np.float64).ravel()
    known = values[~np.isnan(values)]
    if known.size == 0:
        raise ValueError("no training label")
    shape = np.asarray(labels).shape
    return {
        name: numeric_scores(labels, np.full(shape, constant), tolerance)
        for name, constant in (("mean", known.mean()), ("median", np.median(known)))
    }

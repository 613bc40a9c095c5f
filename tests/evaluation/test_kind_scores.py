"""Categorical and numeric scores and baselines, equal to scikit-learn's."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
)

from faceattr.evaluation.kinds import (
    categorical_baseline,
    categorical_scores,
    majority_class,
    numeric_baselines,
    numeric_scores,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_categorical_scores_equal_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 4, 60).astype(np.float64)  # class 4 never labelled
    guess = np.where(rng.random(60) < 0.6, truth, rng.integers(0, 5, 60))
    labels = truth.copy()
    labels[[3, 17]] = np.nan
    scores = categorical_scores(labels, guess, 5)
    keep = ~np.isnan(labels)
    t, g = truth[keep].astype(int), guess[keep].astype(int)
    assert scores.count == 58
    assert scores.accuracy == pytest.approx(accuracy_score(t, g))
    assert scores.macro_f1 == pytest.approx(f1_score(t, g, average="macro", zero_division=0))
    with warnings.catch_warnings():  # y_pred may hold a class y_true lacks
        warnings.simplefilter("ignore")
        expected_balanced = balanced_accuracy_score(t, g)
    assert scores.balanced_accuracy == pytest.approx(expected_balanced)
    assert np.array_equal(scores.confusion, confusion_matrix(t, g, labels=range(5)))


def test_numeric_scores_equal_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(1, 90, 80)
    guess = truth + rng.normal(0, 6, 80)
    labels = truth.copy()
    labels[5] = np.nan
    scores = numeric_scores(labels, guess)
    keep = ~np.isnan(labels)
    assert scores.mae == pytest.approx(mean_absolute_error(truth[keep], guess[keep]))
    rmse = math.sqrt(mean_squared_error(truth[keep], guess[keep]))
    assert scores.rmse == pytest.approx(rmse)
    assert scores.cs == pytest.approx(np.mean(np.abs(truth[keep] - guess[keep]) <= 5))
    assert numeric_scores([10.0, 20.0], [15.0, 25.5]).cs == 0.5  # CS(5) counts an error of 5


def test_baselines_learn_a_constant_from_the_training_labels() -> None:
    train = np.array([0, 2, 2, 1, np.nan, 2])
    assert majority_class(train, 3) == 2
    target = np.array([2, 0, 1, 2])
    baseline = categorical_baseline(train, target, 3)
    assert baseline.accuracy == 0.5
    assert baseline.macro_f1 == pytest.approx(f1_score(target, [2] * 4, average="macro"))
    ages = np.array([20.0, 30.0, 70.0, np.nan])
    scores = numeric_baselines(ages, np.array([25.0, 40.0]))
    assert scores["mean"].mae == pytest.approx(mean_absolute_error([25, 40], [40, 40]))
    assert scores["median"].mae == pytest.approx(mean_absolute_error([25, 40], [30, 30]))

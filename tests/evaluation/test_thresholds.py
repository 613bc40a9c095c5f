"""Thresholds tuned per attribute reach the best F1 / accuracy any threshold reaches."""

from __future__ import annotations

import numpy as np
import pytest

from faceattr.evaluation.metrics import attribute_metrics
from faceattr.evaluation.thresholds import apply_thresholds, tune_thresholds

NAMES = ("rare", "common", "tied")


def badly_calibrated(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """A rare attribute (5%) whose scores rank well but all lie below 0.5, a common one, and one
    with coarse, tied scores."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, 3)) < [0.05, 0.6, 0.3]).astype(np.uint8)
    logits = rng.normal(0, 1, labels.shape) + 2.5 * labels
    probabilities = 1 / (1 + np.exp(-(logits - [4.5, 0.0, 0.0])))
    probabilities[:, 2] = np.round(probabilities[:, 2], 1)
    return labels, probabilities.astype(np.float32)


def best_by_brute_force(labels: np.ndarray, scores: np.ndarray, metric: str) -> np.ndarray:
    """For each attribute the best ``metric`` over thresholds at every distinct score and below."""
    best = np.zeros(labels.shape[1])
    for k in range(labels.shape[1]):
        for t in [-1.0, *np.unique(scores[:, k])]:
            decisions = apply_thresholds(scores[:, k : k + 1], np.array([t]))
            value = getattr(attribute_metrics(labels[:, k : k + 1], decisions, ["x"]), metric)[0]
            best[k] = max(best[k], value)
    return best


@pytest.mark.parametrize("objective", ["f1", "accuracy"])
def test_tuned_thresholds_reach_the_best_score_of_any_threshold(objective: str) -> None:
    labels, scores = badly_calibrated(0)
    thresholds = tune_thresholds(labels, scores, objective)  # type: ignore[arg-type]
    tuned = attribute_metrics(labels, apply_thresholds(scores, thresholds), NAMES)
    np.testing.assert_allclose(
        getattr(tuned, objective), best_by_brute_force(labels, scores, objective)
    )


def test_tuning_raises_f1_of_a_rare_attribute_on_validation_and_test() -> None:
    val_labels, val_scores = badly_calibrated(1)
    test_labels, test_scores = badly_calibrated(2)
    thresholds = tune_thresholds(val_labels, val_scores, "f1")
    assert thresholds[0] < 0.5
    for labels, scores in ((val_labels, val_scores), (test_labels, test_scores)):
        plain = attribute_metrics(labels, apply_thresholds(scores, np.full(3, 0.5)), NAMES)
        tuned = attribute_metrics(labels, apply_thresholds(scores, thresholds), NAMES)
        assert plain.f1[0] < 0.1 < 0.5 < tuned.f1[0]


def test_thresholds_never_split_tied_scores_and_prefer_one_half() -> None:
    labels, scores = badly_calibrated(3)
    thresholds = tune_thresholds(labels, scores, "accuracy")
    assert not np.isin(thresholds[2], scores[:, 2])
    # Every threshold separates the same scores: the one nearest 0.5 among equals is chosen.
    perfect = np.array([[0], [0], [1], [1]], np.uint8)
    separable = np.array([[0.1], [0.2], [0.8], [0.9]], np.float32)
    assert tune_thresholds(perfect, separable)[0] == pytest.approx(0.5)
    assert tune_thresholds(perfect[:2], separable[:2])[0] >= 0.2  # no positive: none predicted
    everything = tune_thresholds(perfect[2:], separable[2:])[0]
    assert apply_thresholds(separable[2:], np.array([everything])).all()


def test_bad_input_is_named() -> None:
    labels, scores = badly_calibrated(4, n=10)
    with pytest.raises(ValueError, match="unknown objective"):
        tune_thresholds(labels, scores, "auc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="differ in shape"):
        tune_thresholds(labels, scores[:, :2])
    with pytest.raises(ValueError, match="finite"):
        tune_thresholds(labels, np.full(scores.shape, np.nan))

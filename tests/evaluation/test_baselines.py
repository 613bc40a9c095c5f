"""Majority and minority baselines: seed 000's figures, the real sample, scikit-learn's F1."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from faceattr.data.baselines import (
    baseline_scores,
    majority_predictions,
    minority_predictions,
    per_attribute_f1,
)
from faceattr.data.record import FaceDataset


def test_reproduces_seed_000_on_all_rows(real_celeba: FaceDataset) -> None:
    # Seed 000 fitted and scored its estimators on the whole attribute file.
    labels = real_celeba.labels
    scores = baseline_scores(labels, labels, real_celeba.attribute_names)
    at = {name: k for k, name in enumerate(scores.names)}
    assert scores.majority_accuracy[at["Male"]] == pytest.approx(0.5832457218446291, abs=1e-12)
    seed_f1 = {
        "Mustache": 0.07977594116085986,
        "Bald": 0.04390140287526672,
        "Eyeglasses": 0.12227515385185733,
        "No_Beard": 0.2833502796136248,
        "Wearing_Hat": 0.09244081217604994,
    }
    for name, f1 in seed_f1.items():
        assert scores.minority_f1[at[name]] == pytest.approx(f1, abs=1e-12), name
    # The positive class is the minority one: a beard (No_Beard = 0), but Bald = 1.
    assert scores.positive_class[at["No_Beard"]] == 0 and scores.positive_class[at["Bald"]] == 1


def test_present_test_images_against_train_majority(real_celeba: FaceDataset) -> None:
    train = real_celeba.labels[real_celeba.split_indices("train")]
    test = real_celeba.labels[real_celeba.split_indices("test")]
    assert len(train) == 16_000 and len(test) == 2_000
    scores = baseline_scores(train, test, real_celeba.attribute_names)
    assert scores.count == 2_000
    assert round(100 * scores.mean_majority_accuracy, 2) == 80.39
    np.testing.assert_allclose(scores.minority_accuracy, 1 - scores.majority_accuracy)
    assert scores.mean_majority_f1 == 0.0  # the majority never predicts the (minority) positive
    for k in range(test.shape[1]):
        positive = int(scores.positive_class[k])
        for predicted, ours in (
            (1 - positive, scores.majority_f1[k]),
            (positive, scores.minority_f1[k]),
        ):
            constant = np.full(len(test), predicted)
            theirs = f1_score(test[:, k], constant, pos_label=positive, zero_division=0)
            assert ours == pytest.approx(theirs, abs=1e-12), scores.names[k]


def test_f1_of_model_predictions_matches_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, (300, 5), dtype=np.uint8)
    predictions = rng.integers(0, 2, (300, 5), dtype=np.uint8)
    positive = np.array([1, 0, 1, 0, 1], dtype=np.uint8)
    ours = per_attribute_f1(targets, predictions, positive)
    for k in range(5):
        theirs = f1_score(targets[:, k], predictions[:, k], pos_label=int(positive[k]))
        assert ours[k] == pytest.approx(theirs, abs=1e-12)


def test_majority_ties_go_to_zero_and_minority_is_the_other_class() -> None:
    train = np.array([[1, 0, 1], [1, 1, 0], [1, 0, 0], [0, 1, 1]], dtype=np.uint8)
    np.testing.assert_array_equal(majority_predictions(train), [1, 0, 0])
    np.testing.assert_array_equal(minority_predictions(train), [0, 1, 1])


def test_hand_computed_scores() -> None:
    train = np.array([[0], [0], [0], [1]], dtype=np.uint8)  # majority 0, positive class 1
    test = np.array([[1], [0], [0], [0], [1]], dtype=np.uint8)
    scores = baseline_scores(train, test, ["Bald"])
    assert scores.majority_accuracy[0] == pytest.approx(0.6)
    assert scores.minority_accuracy[0] == pytest.approx(0.4)
    assert scores.minority_f1[0] == pytest.approx(2 * 2 / (2 * 2 + 3))  # TP 2, FP 3, FN 0
    assert scores.records()[0]["positive_class"] == 1


@pytest.mark.parametrize(
    ("train", "test", "message"),
    [
        (np.zeros((3, 2), np.int64), np.zeros((3, 2), np.uint8), "expected uint8"),
        (np.full((3, 2), 2, np.uint8), np.zeros((3, 2), np.uint8), "must be 0 or 1"),
        (np.zeros((3, 2), np.uint8), np.zeros((0, 2), np.uint8), "test labels: expected a non"),
        (np.zeros((3, 2), np.uint8), np.zeros((3, 3), np.uint8), "attribute counts disagree"),
    ],
)
def test_bad_labels_are_refused(train: np.ndarray, test: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        baseline_scores(train, test, ["a", "b"])

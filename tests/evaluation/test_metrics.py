"""Multi-label metrics equal scikit-learn's, including all-zero and all-one columns."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    classification_report,
    hamming_loss,
    jaccard_score,
    precision_recall_fscore_support,
)

from faceattr.evaluation.metrics import attribute_metrics, write_classification_report

NAMES = tuple(f"a{k}" for k in range(7))


def random_case(seed: int, n: int = 60, empty_rows: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Labels and decisions with skewed columns, an all-zero and an all-one label column (unless
    ``empty_rows``: then the first samples have no true labels, three no predicted ones either),
    and an all-zero and an all-one decision column."""
    rng = np.random.default_rng(seed)
    rates = np.array([0.5, 0.1, 0.9, 0.03, 0.5, 0.0, 1.0])
    labels = (rng.random((n, len(NAMES))) < rates).astype(np.uint8)
    decisions = np.where(rng.random(labels.shape) < 0.75, labels, 1 - labels).astype(np.uint8)
    decisions[:, 3] = 0  # never predicted: precision undefined
    decisions[:, 4] = 1
    if empty_rows:
        labels[:5] = 0
        decisions[:3] = 0  # three empty samples, two with false positives
    return labels, decisions


@pytest.mark.parametrize(("seed", "empty_rows"), [(0, True), (1, True), (2, False)])
def test_per_attribute_scores_equal_sklearn(seed: int, empty_rows: bool) -> None:
    labels, decisions = random_case(seed, empty_rows=empty_rows)
    assert labels[:, 5].max() == 0 and (labels[:, 6].min() == 1) != empty_rows
    metrics = attribute_metrics(labels, decisions, NAMES)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, decisions, average=None, zero_division=0
    )
    np.testing.assert_allclose(metrics.precision, precision)
    np.testing.assert_allclose(metrics.recall, recall)
    np.testing.assert_allclose(metrics.f1, f1)
    np.testing.assert_array_equal(metrics.support, support)
    for k in range(len(NAMES)):
        assert metrics.accuracy[k] == pytest.approx(accuracy_score(labels[:, k], decisions[:, k]))
        with warnings.catch_warnings():  # a one-class column: "classes not in y_true"
            warnings.simplefilter("ignore", UserWarning)
            expected = balanced_accuracy_score(labels[:, k], decisions[:, k])
        assert metrics.balanced_accuracy[k] == pytest.approx(expected), NAMES[k]
    np.testing.assert_allclose(metrics.error, 1 - metrics.accuracy)
    assert metrics.tp.sum() + metrics.fp.sum() + metrics.fn.sum() + metrics.tn.sum() == labels.size


@pytest.mark.parametrize(("seed", "empty_rows"), [(0, True), (1, False)])
def test_hamming_and_averages_equal_sklearn(seed: int, empty_rows: bool) -> None:
    labels, decisions = random_case(seed, empty_rows=empty_rows)
    metrics = attribute_metrics(labels, decisions, NAMES)
    assert metrics.hamming_loss == pytest.approx(hamming_loss(labels, decisions))
    expected_score = jaccard_score(labels, decisions, average="samples", zero_division=1)
    assert metrics.hamming_score == pytest.approx(expected_score)
    report = classification_report(
        labels, decisions, target_names=list(NAMES), output_dict=True, zero_division=0
    )
    for kind, scores in metrics.averages().items():
        row = report[f"{kind} avg"]
        assert (scores.precision, scores.recall, scores.f1) == pytest.approx(
            (row["precision"], row["recall"], row["f1-score"])
        ), kind
    assert metrics.mean()["f1"] == pytest.approx(report["macro avg"]["f1-score"])


def test_classification_report_csv_matches_sklearn(tmp_path: Path) -> None:
    labels, decisions = random_case(3)
    metrics = attribute_metrics(labels, decisions, NAMES)
    report = classification_report(
        labels, decisions, target_names=list(NAMES), output_dict=True, zero_division=0
    )
    path = write_classification_report(metrics, tmp_path / "report.csv")
    with path.open() as file:
        rows = list(csv.DictReader(file))
    assert [r["label"] for r in rows] == list(report)
    for row in rows:
        expected = report[row["label"]]
        assert float(row["precision"]) == pytest.approx(expected["precision"]), row["label"]
        assert float(row["f1-score"]) == pytest.approx(expected["f1-score"]), row["label"]
        assert int(row["support"]) == expected["support"], row["label"]


def test_to_dict_holds_every_metric_as_lists() -> None:
    labels, decisions = random_case(4, n=10)
    data = attribute_metrics(labels, decisions, NAMES).to_dict()
    assert set(data["per_attribute"]) == {
        "accuracy",
        "error",
        "precision",
        "recall",
        "f1",
        "balanced_accuracy",
        "support",
    }
    assert all(len(v) == len(NAMES) for v in data["per_attribute"].values())
    assert set(data["averages"]) == {"micro", "macro", "weighted", "samples"}
    assert data["mean"]["error"] == pytest.approx(data["hamming_loss"])


def test_bad_input_is_named() -> None:
    labels, decisions = random_case(5, n=10)
    with pytest.raises(ValueError, match="shapes disagree"):
        attribute_metrics(labels, decisions[:, :3], NAMES)
    with pytest.raises(ValueError, match="decisions: labels must be 0 or 1"):
        attribute_metrics(labels, decisions * 2, NAMES)

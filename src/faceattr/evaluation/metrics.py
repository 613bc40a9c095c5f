"""Multi-label metrics over ``(N, K)`` labels and decisions, vectorised with numpy.

Per attribute (column): accuracy, error, precision, recall, F1, balanced accuracy and support,
from the confusion counts TP/FP/FN/TN; their means over the attributes; hamming loss and hamming
score (seed 001); the micro, macro, weighted and samples averages of precision, recall and F1 that
scikit-learn's ``classification_report`` prints (seed 004), also as CSV rows.

Conventions (scikit-learn's, checked against it in the tests):

- The positive class of precision, recall and F1 is 1, "attribute present" (the baselines of
  :mod:`faceattr.data.baselines` take each attribute's training-minority class instead).
- An undefined ratio (no predicted positives for precision, no true positives for recall, neither
  for F1) is 0, as ``zero_division=0``.
- Balanced accuracy is the mean of the true-positive and true-negative rates over the classes
  present in the labels: a column of one class only scores that class's rate.
- Hamming loss is the fraction of wrong labels; hamming score is the per-sample Jaccard index
  ``|T & P| / |T | P|`` averaged over the samples (seed 001's "MultiLabelAccuracy"). A sample with
  neither true nor predicted labels agrees perfectly and scores 1, as in the usual hamming-score
  code the seed cites and ``jaccard_score(average="samples", zero_division=1)``.
- The samples average scores each image's labels as one set (``zero_division=0``); the report's
  support of an average row is the total number of positive labels.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from faceattr.data.baselines import LabelArray, ScoreArray, check_labels

CountArray = NDArray[np.int64]
AVERAGES = ("micro", "macro", "weighted", "samples")
MEAN_METRICS = ("accuracy", "error", "precision", "recall", "f1", "balanced_accuracy")
REPORT_COLUMNS = ("label", "precision", "recall", "f1-score", "support")


def ratio(numerator: NDArray[Any], denominator: NDArray[Any], empty: float = 0.0) -> ScoreArray:
    """``numerator / denominator`` elementwise, ``empty`` where the denominator is 0."""
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    return np.divide(num, den, out=np.full(np.broadcast(num, den).shape, empty), where=den > 0)


def f1_of(
    true_positives: NDArray[Any], predicted: NDArray[Any], actual: NDArray[Any]
) -> ScoreArray:
    """F1 = 2TP / (predicted positives + actual positives), 0 where both are 0."""
    return ratio(2 * np.asarray(true_positives), np.asarray(predicted) + np.asarray(actual))


@dataclass(frozen=True)
class AveragedScores:
    """Precision, recall and F1 under one averaging rule."""

    precision: float
    recall: float
    f1: float

    def to_dict(self) -> dict[str, float]:
        """``{"precision", "recall", "f1"}``."""
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1}


@dataclass(frozen=True)
class AttributeMetrics:
    """Confusion counts per attribute of one set of decisions, and every score derived from them.

    Per-attribute scores are ``(K,)`` arrays; the per-sample scores (hamming score, samples
    average) need the rows, so :func:`attribute_metrics` computes them once and keeps them here.
    """

    names: tuple[str, ...]
    count: int
    """Number of samples (images)."""
    tp: CountArray
    fp: CountArray
    fn: CountArray
    tn: CountArray
    hamming_score: float
    samples: AveragedScores

    @property
    def support(self) -> CountArray:
        """(K,) true positives + false negatives: how many samples show each attribute."""
        return self.tp + self.fn

    @property
    def accuracy(self) -> ScoreArray:
        """(K,) (TP + TN) / N."""
        return (self.tp + self.tn) / float(self.count)

    @property
    def error(self) -> ScoreArray:
        """(K,) 1 - accuracy."""
        return (self.fp + self.fn) / float(self.count)

    @property
    def precision(self) -> ScoreArray:
        """(K,) TP / (TP + FP), 0 without predicted positives."""
        return ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> ScoreArray:
        """(K,) TP / (TP + FN), 0 without true positives."""
        return ratio(self.tp, self.support)

    @property
    def f1(self) -> ScoreArray:
        """(K,) 2TP / (2TP + FP + FN), 0 when undefined."""
        return f1_of(self.tp, self.tp + self.fp, self.support)

    @property
    def balanced_accuracy(self) -> ScoreArray:
        """(K,) mean of the true-positive and true-negative rates of the classes present."""
        negatives = self.tn + self.fp
        rates = ratio(self.tp, self.support) + ratio(self.tn, negatives)
        classes = (self.support > 0).astype(np.int64) + (negatives > 0)
        return ratio(rates, classes)

    @property
    def hamming_loss(self) -> float:
        """Fraction of wrong labels over all samples and attributes (the mean error)."""
        return float((self.fp + self.fn).sum() / (self.count * len(self.names)))

    def per_attribute(self) -> dict[str, ScoreArray | CountArray]:
        """Every per-attribute metric by name: accuracy ... balanced_accuracy, support."""
        values: dict[str, ScoreArray | CountArray] = {m: getattr(self, m) for m in MEAN_METRICS}
        values["support"] = self.support
        return values

    def mean(self) -> dict[str, float]:
        """Each per-attribute score averaged over the attributes (support left out)."""
        return {m: float(np.mean(getattr(self, m))) for m in MEAN_METRICS}

    def averages(self) -> dict[str, AveragedScores]:
        """scikit-learn's micro, macro, weighted and samples averages of precision/recall/F1."""
        tp, predicted, support = self.tp.sum(), (self.tp + self.fp).sum(), self.support.sum()
        precision, recall, f1 = self.precision, self.recall, self.f1
        weights = self.support / support if support > 0 else np.zeros(len(self.names))
        return {
            "micro": AveragedScores(
                float(ratio(tp, predicted)),
                float(ratio(tp, support)),
                float(f1_of(tp, predicted, support)),
            ),
            "macro": AveragedScores(
                float(precision.mean()), float(recall.mean()), float(f1.mean())
            ),
            "weighted": AveragedScores(
                float(weights @ precision), float(weights @ recall), float(weights @ f1)
            ),
            "samples": self.samples,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``count``, ``per_attribute`` lists, ``mean``, hamming loss and score,
        ``averages``, and the confusion counts."""
        return {
            "count": self.count,
            "per_attribute": {k: v.tolist() for k, v in self.per_attribute().items()},
            "mean": self.mean(),
            "hamming_loss": self.hamming_loss,
            "hamming_score": self.hamming_score,
            "averages": {k: v.to_dict() for k, v in self.averages().items()},
            "confusion": {
                "tp": self.tp.tolist(),
                "fp": self.fp.tolist(),
                "fn": self.fn.tolist(),
                "tn": self.tn.tolist(),
            },
        }

    def classification_report_rows(self) -> list[dict[str, str | float | int]]:
        """Seed 004's report: one row per attribute, then ``micro avg`` ... ``samples avg``
        (columns :data:`REPORT_COLUMNS`, as scikit-learn's ``classification_report``)."""
        rows: list[dict[str, str | float | int]] = [
            {
                "label": name,
                "precision": float(self.precision[k]),
                "recall": float(self.recall[k]),
                "f1-score": float(self.f1[k]),
                "support": int(self.support[k]),
            }
            for k, name in enumerate(self.names)
        ]
        total = int(self.support.sum())
        for kind, scores in self.averages().items():
            rows.append(
                {
                    "label": f"{kind} avg",
                    "precision": scores.precision,
                    "recall": scores.recall,
                    "f1-score": scores.f1,
                    "support": total,
                }
            )
        return rows


def attribute_metrics(
    labels: LabelArray, decisions: LabelArray, names: tuple[str, ...] | list[str]
) -> AttributeMetrics:
    """Score 0/1 ``decisions`` against ``labels``, both ``(N, K)`` uint8, columns ``names``."""
    truth = check_labels(labels, "labels").astype(bool)
    predicted = check_labels(decisions, "decisions").astype(bool)
    if truth.shape != predicted.shape or len(names) != truth.shape[1]:
        raise ValueError(
            f"shapes disagree: labels {truth.shape}, decisions {predicted.shape}, "
            f"{len(names)} names"
        )
    both = truth & predicted
    tp = both.sum(axis=0, dtype=np.int64)
    fp = (predicted & ~truth).sum(axis=0, dtype=np.int64)
    fn = (truth & ~predicted).sum(axis=0, dtype=np.int64)
    n = truth.shape[0]
    row_tp = both.sum(axis=1, dtype=np.int64)
    row_true = truth.sum(axis=1, dtype=np.int64)
    row_predicted = predicted.sum(axis=1, dtype=np.int64)
    union = (truth | predicted).sum(axis=1, dtype=np.int64)
    samples = AveragedScores(
        precision=float(ratio(row_tp, row_predicted).mean()),
        recall=float(ratio(row_tp, row_true).mean()),
        f1=float(f1_of(row_tp, row_predicted, row_true).mean()),
    )
    return AttributeMetrics(
        names=tuple(names),
        count=n,
        tp=tp,
        fp=fp,
        fn=fn,
        tn=n - tp - fp - fn,
        hamming_score=float(ratio(row_tp, union, empty=1.0).mean()),
        samples=samples,
    )


def write_classification_report(metrics: AttributeMetrics, path: str | Path) -> Path:
    """Write :meth:`AttributeMetrics.classification_report_rows` as CSV to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(metrics.classification_report_rows())
    return path

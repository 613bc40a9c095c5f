"""Decisions only where the model is sure: the risk-coverage curve of an abstention band.

An attribute is *unsure* when its (calibrated) probability lies strictly within ``band`` of its
threshold, ``|p - t| < band`` (``faceattr predict --abstain BAND``). Over a grid of bands,
:func:`risk_coverage` gives per attribute the share of decisions kept (coverage: non-increasing in
the band, 1 at band 0) and their accuracy (the plain accuracy at band 0). Its area is the AURC of
Geifman and El-Yaniv: the selective risk (error of the kept decisions) averaged over every
coverage ``k / N``, the decisions kept in order of their distance to the threshold; lower is
better, and a model that is never surer where it is right gets its plain error.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from faceattr.data.baselines import LabelArray, check_labels
from faceattr.evaluation.thresholds import ThresholdArray

BANDS = np.round(np.arange(0.0, 0.501, 0.01), 2)
"""The abstention bands of the written curve: 0 to 0.5 by 0.01."""


def unsure(
    probabilities: NDArray[np.floating], thresholds: ThresholdArray, band: float
) -> NDArray[np.bool_]:
    """Where a probability lies strictly within ``band`` of its threshold (never for band 0)."""
    return np.abs(np.asarray(probabilities, np.float64) - np.asarray(thresholds, np.float64)) < band


@dataclass(frozen=True)
class RiskCoverage:
    """Coverage and accuracy of the kept decisions per band and attribute, and the AURC."""

    attributes: tuple[str, ...]
    bands: NDArray[np.float64]
    coverage: NDArray[np.float64]
    """``(B, K)`` share of decisions kept."""
    accuracy: NDArray[np.float64]
    """``(B, K)`` accuracy of the kept decisions (NaN where none is kept)."""
    area: NDArray[np.float64]
    """``(K,)`` area under the risk-coverage curve (AURC)."""

    def mean_curve(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Mean coverage and mean accuracy over the attributes per band (accuracy over the
        attributes keeping a decision)."""
        return self.coverage.mean(axis=1), np.nanmean(
            np.where(self.coverage > 0, self.accuracy, np.nan), axis=1
        )

    def to_dict(self) -> dict[str, Any]:
        """eval.json's entry: the AURC per attribute and its mean, and the mean curve."""
        coverage, accuracy = self.mean_curve()
        return {
            "aurc": self.area.tolist(),
            "mean_aurc": float(self.area.mean()),
            "bands": self.bands.tolist(),
            "mean_coverage": coverage.tolist(),
            "mean_accuracy": accuracy.tolist(),
        }


def risk_coverage(
    labels: LabelArray,
    probabilities: NDArray[np.floating],
    thresholds: ThresholdArray,
    attributes: tuple[str, ...],
    bands: NDArray[np.float64] = BANDS,
) -> RiskCoverage:
    """The curve of the decisions ``probabilities > thresholds`` against ``labels`` ``(N, K)``."""
    truth = check_labels(labels, "labels")
    p = np.asarray(probabilities, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    correct = (p > t).astype(np.uint8) == truth
    coverage = np.zeros((len(bands), p.shape[1]))
    accuracy = np.full((len(bands), p.shape[1]), np.nan)
    for b, band in enumerate(bands):
        kept = ~unsure(p, t, float(band))
        coverage[b] = kept.mean(axis=0)
        count = kept.sum(axis=0)
        accuracy[b] = np.divide(
            (correct & kept).sum(axis=0), count, out=accuracy[b], where=count > 0
        )
    order = np.argsort(-np.abs(p - t), axis=0, kind="stable")
    errors = np.cumsum(~np.take_along_axis(correct, order, axis=0), axis=0)
    area = (errors / np.arange(1, len(p) + 1)[:, None]).mean(axis=0)
    return RiskCoverage(attributes, np.asarray(bands, np.float64), coverage, accuracy, area)


def write_risk_coverage(curve: RiskCoverage, path: Path) -> Path:
    """A CSV of the curve: band, then coverage and accuracy per attribute and their means."""
    coverage, accuracy = curve.mean_curve()
    header = ["band", "mean_coverage", "mean_accuracy"]
    header += [f"{kind}_{name}" for name in curve.attributes for kind in ("coverage", "accuracy")]
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        for b, band in enumerate(curve.bands):
            pairs = zip(curve.coverage[b], curve.accuracy[b], strict=True)
            cells = [f"{v:.6f}" for pair in pairs for v in pair]
            writer.writerow([f"{band:g}", f"{coverage[b]:.6f}", f"{accuracy[b]:.6f}", *cells])
    return path

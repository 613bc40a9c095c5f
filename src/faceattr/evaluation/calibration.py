"""How far probabilities are from frequencies, and the per-attribute maps that bring them closer.

Measures, per attribute of ``(N, K)`` labels and probabilities: expected calibration error (ECE,
the bin-weighted mean of ``|frequency - mean probability|``) and maximum calibration error (MCE,
the largest) over :data:`BINS` equal-mass bins (scikit-learn's ``calibration_curve(strategy=
"quantile")`` binning; ``strategy="uniform"`` gives torchmetrics' ``binary_calibration_error``),
Brier score and negative log-likelihood (scikit-learn's ``brier_score_loss`` and ``log_loss``).
ECE is biased upwards on a finite sample: ``ece_floor`` is the mean ECE a perfectly calibrated
model with the same probabilities would measure on as many images (labels drawn from the
probabilities themselves), the level below which a measured ECE says nothing.

Fits (:func:`fit_calibration`): temperature scaling (a one-dimensional NLL minimum, SciPy's
bounded Brent), Platt scaling (scikit-learn's ``LogisticRegression(C=inf)`` on the logit) and
isotonic regression (scikit-learn's ``IsotonicRegression``, its outputs kept half a sample away
from 0 and 1), each scored by its cross-validated NLL on the validation scores; per attribute the
lowest wins (none at all, the raw probability, competes too) and is refitted on every validation
row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar
from scipy.special import logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

from faceattr.data.baselines import LabelArray, check_labels
from faceattr.models.calibration import (
    EPSILON,
    METHODS,
    AttributeCalibration,
    Calibration,
    Method,
)

BINS = 10
"""Equal-mass bins of the reported ECE and MCE (200 of the 2,000 CelebA test images each)."""
Strategy = Literal["quantile", "uniform"]
MEASURES = ("ece", "mce", "brier", "nll", "ece_floor")
FLOOR_DRAWS = 20
"""Label draws averaged for the ECE floor."""
FOLDS = 5
"""Cross-validation folds of the validation rows that choose each attribute's method."""
MIN_ROWS = 2 * FOLDS
"""Fewer validation rows fit no calibration (``faceattr evaluate`` says so); a few more fit a
noisy one, which the cross-validated choice tends to leave at none."""


@dataclass(frozen=True)
class ReliabilityBins:
    """One attribute's non-empty bins: mean probability, frequency of positives and count."""

    confidence: NDArray[np.float64]
    frequency: NDArray[np.float64]
    count: NDArray[np.int64]


def reliability_bins(
    labels: NDArray[np.integer],
    probabilities: NDArray[np.floating],
    bins: int = BINS,
    strategy: Strategy = "quantile",
) -> ReliabilityBins:
    """The reliability diagram of one attribute (``(N,)`` labels and probabilities), binned as
    scikit-learn's ``calibration_curve`` bins: equal-mass ("quantile") or equal-width edges."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if strategy == "quantile":
        edges = np.percentile(p, np.linspace(0.0, 100.0, bins + 1))
    else:
        edges = np.linspace(0.0, 1.0, bins + 1)
    ids = np.searchsorted(edges[1:-1], p)
    count = np.bincount(ids, minlength=bins)
    kept = count > 0
    return ReliabilityBins(
        confidence=np.bincount(ids, weights=p, minlength=bins)[kept] / count[kept],
        frequency=np.bincount(ids, weights=y, minlength=bins)[kept] / count[kept],
        count=count[kept].astype(np.int64),
    )


def negative_log_likelihood(
    labels: NDArray[np.integer], probabilities: NDArray[np.floating]
) -> NDArray[np.float64]:
    """``(K,)`` mean binary NLL per column (probabilities clipped to machine epsilon, as
    scikit-learn's ``log_loss``)."""
    eps = np.finfo(np.float64).eps
    p = np.clip(np.asarray(probabilities, dtype=np.float64), eps, 1.0 - eps)
    y = np.asarray(labels, dtype=np.float64)
    return -(y * np.log(p) + (1.0 - y) * np.log1p(-p)).mean(axis=0)


@dataclass(frozen=True)
class CalibrationMetrics:
    """Per-attribute calibration of probabilities against labels."""

    attributes: tuple[str, ...]
    bins: int
    strategy: Strategy
    ece: NDArray[np.float64]
    mce: NDArray[np.float64]
    brier: NDArray[np.float64]
    nll: NDArray[np.float64]
    ece_floor: NDArray[np.float64]
    """The ECE a perfectly calibrated model with these probabilities would measure here."""

    def mean(self) -> dict[str, float]:
        """The mean of each measure over the attributes."""
        return {name: float(np.mean(getattr(self, name))) for name in MEASURES}

    def to_dict(self) -> dict[str, Any]:
        """eval.json's entry: binning, per-attribute values and means."""
        return {
            "bins": self.bins,
            "binning": "equal-mass" if self.strategy == "quantile" else "equal-width",
            "per_attribute": {name: getattr(self, name).tolist() for name in MEASURES},
            "mean": self.mean(),
        }


def calibration_metrics(
    labels: LabelArray,
    probabilities: NDArray[np.floating],
    attributes: Sequence[str],
    bins: int = BINS,
    strategy: Strategy = "quantile",
) -> CalibrationMetrics:
    """ECE, MCE, Brier score and NLL of every column of ``(N, K)`` ``probabilities``."""
    truth = check_labels(labels, "labels")
    p = np.asarray(probabilities, dtype=np.float64)
    if p.shape != truth.shape:
        raise ValueError(f"probabilities {p.shape} and labels {truth.shape} differ in shape")
    ece, mce, floor = (np.zeros(p.shape[1]) for _ in range(3))
    rng = np.random.default_rng(0)
    for k in range(p.shape[1]):
        ece[k], mce[k] = bin_errors(truth[:, k], p[:, k], bins, strategy)
        drawn = rng.random((FLOOR_DRAWS, len(p))) < p[:, k]
        floor[k] = np.mean([bin_errors(y, p[:, k], bins, strategy)[0] for y in drawn])
    return CalibrationMetrics(
        attributes=tuple(attributes),
        bins=bins,
        strategy=strategy,
        ece=ece,
        mce=mce,
        brier=((p - truth) ** 2).mean(axis=0),
        nll=negative_log_likelihood(truth, p),
        ece_floor=floor,
    )


def bin_errors(
    labels: NDArray[np.integer],
    probabilities: NDArray[np.floating],
    bins: int = BINS,
    strategy: Strategy = "quantile",
) -> tuple[float, float]:
    """ECE and MCE of one attribute's ``(N,)`` labels and probabilities."""
    diagram = reliability_bins(labels, probabilities, bins, strategy)
    gaps = np.abs(diagram.frequency - diagram.confidence)
    return float((gaps * diagram.count).sum() / diagram.count.sum()), float(gaps.max())


def fit_temperature(labels: NDArray[np.integer], probabilities: NDArray[np.floating]) -> float:
    """The temperature ``T`` minimising the NLL of ``sigmoid(logit(p) / T)`` (``(N,)`` arrays)."""
    z = _logits(probabilities)
    y = np.asarray(labels, dtype=np.float64)

    def nll(log_t: float) -> float:
        scaled = z / np.exp(log_t)
        return float(np.mean(np.logaddexp(0.0, scaled) - y * scaled))

    found = minimize_scalar(
        nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-6}
    )
    return float(np.exp(found.x))


def fit_map(
    method: Method, labels: NDArray[np.integer], probabilities: NDArray[np.floating]
) -> AttributeCalibration:
    """One attribute's ``method`` map fitted on ``(N,)`` labels and raw probabilities."""
    y = np.asarray(labels).astype(np.int64)
    if method == "none":
        return AttributeCalibration("none")
    if method == "temperature":
        return AttributeCalibration.temperature(fit_temperature(y, probabilities))
    if method == "platt":
        regression = LogisticRegression(C=np.inf).fit(_logits(probabilities)[:, None], y)
        return AttributeCalibration(
            "platt", scale=float(regression.coef_[0, 0]), bias=float(regression.intercept_[0])
        )
    margin = 0.5 / len(y)  # no certainty from a finite sample: a finite NLL on new data
    isotonic = IsotonicRegression(y_min=margin, y_max=1.0 - margin, out_of_bounds="clip")
    isotonic.fit(np.asarray(probabilities, dtype=np.float64), y)
    x, fitted = isotonic.X_thresholds_, isotonic.y_thresholds_
    if len(x) < 2:  # one distinct score: a constant map
        x, fitted = np.array([0.0, 1.0]), np.repeat(fitted[:1], 2)
    return AttributeCalibration("isotonic", knots=(tuple(x.tolist()), tuple(fitted.tolist())))


@dataclass(frozen=True)
class CalibrationFit:
    """A fitted :class:`Calibration` and how each attribute's method was chosen."""

    calibration: Calibration
    heldout_nll: dict[str, NDArray[np.float64]]
    """Method -> ``(K,)`` cross-validated NLL: each validation row scored by the map fitted on
    the other folds (infinite where the method was not tried)."""
    folds: int

    def to_dict(self) -> dict[str, Any]:
        """eval.json's entry: the winners, their count and the held-out NLLs."""
        methods = self.calibration.methods
        return {
            "source": self.calibration.source,
            "folds": self.folds,
            "methods": list(methods),
            "wins": {m: methods.count(m) for m in METHODS},
            "heldout_nll": {
                m: [float(x) if np.isfinite(x) else None for x in v]
                for m, v in self.heldout_nll.items()
            },
            "heldout_nll_mean": {
                m: float(v[np.isfinite(v)].mean()) if np.isfinite(v).any() else None
                for m, v in self.heldout_nll.items()
            },
        }


def fit_calibration(
    labels: LabelArray,
    probabilities: NDArray[np.floating],
    attributes: Sequence[str],
    source: str,
    folds: int = FOLDS,
    seed: int = 0,
) -> CalibrationFit:
    """Per attribute, score every method by its cross-validated NLL (scikit-learn's shuffled
    ``KFold``: each fold held out once, the map fitted on the others), keep the lowest (the raw
    probability, method "none", competes too), then refit it on all rows (an attribute with one
    class only in a fold gets temperature scaling or none). Use validation scores only."""
    truth = check_labels(labels, "labels")
    p = np.asarray(probabilities, dtype=np.float64)
    if p.shape != truth.shape or len(p) < 2 * folds:  # two rows a fold at least
        raise ValueError(
            f"need (N >= {2 * folds}, K) labels and probabilities, got {truth.shape}, {p.shape}"
        )
    splits = list(KFold(folds, shuffle=True, random_state=seed).split(p))
    scores: dict[str, NDArray[np.float64]] = {m: np.full(p.shape[1], np.inf) for m in METHODS}
    maps = []
    for k in range(p.shape[1]):
        y, column = truth[:, k], p[:, k]
        simple = not all(both_classes(y[fit]) for fit, _ in splits)
        candidates: tuple[Method, ...] = ("none", "temperature") if simple else METHODS
        for method in candidates:
            held_out = np.empty(len(p), dtype=np.float32)
            for fit, held in splits:
                fitted = Calibration((attributes[k],), (fit_map(method, y[fit], column[fit]),), "")
                held_out[held] = fitted.apply(column[held, None])[:, 0]
            scores[method][k] = negative_log_likelihood(y[:, None], held_out[:, None])[0]
        best = min(candidates, key=lambda m: scores[m][k])
        maps.append(fit_map(best, y, column))
    return CalibrationFit(Calibration(tuple(attributes), tuple(maps), source), scores, folds)


def both_classes(labels: NDArray[np.integer]) -> bool:
    """Whether ``labels`` hold both 0 and 1 (Platt and isotonic fits need both)."""
    return bool(labels.min() != labels.max()) if len(labels) else False


def _logits(probabilities: NDArray[np.floating]) -> NDArray[np.float64]:
    p = np.asarray(probabilities, dtype=np.float32).astype(np.float64)
    return np.asarray(logit(np.clip(p, EPSILON, 1.0 - EPSILON)), dtype=np.float64)

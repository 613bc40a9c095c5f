"""Statistics of a CelebA-format label set: frequencies, imbalance, correlations, baselines.

Pure functions over (N, K) uint8 label arrays and the (N,) partition codes of
:data:`~faceattr.data.formats.SPLIT_CODES` (-1 for an image the partition file lacks, as
:func:`~faceattr.data.loaders.load_dataset` fills it); :func:`write_stats` renders a
:class:`DatasetStats` as two PNG charts, two CSV tables and a JSON file.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import NDArray

from faceattr.data.baselines import BaselineScores, baseline_scores, check_labels
from faceattr.data.formats import SPLIT_CODES

BASELINE_TARGETS: tuple[str, ...] = ("val", "test")  # baselines learn on train, score on these
NO_SPLIT = -1  # partition code of an image without a row in the partition file

ScoreArray = NDArray[np.float64]


@dataclass(frozen=True)
class DatasetStats:
    """Label statistics of one dataset (or of the part of it present on disk)."""

    names: tuple[str, ...]
    count: int  # images described
    frequency: ScoreArray  # (K,) fraction of images with the attribute (label 1)
    imbalance: ScoreArray  # (K,) majority count / minority count; inf when one class is absent
    correlation: ScoreArray  # (K, K) Pearson (phi) correlation; NaN where a column is constant
    split_counts: dict[str, int]  # images per split; empty without a partition
    split_frequency: dict[str, ScoreArray]  # (K,) positive frequency per non-empty split
    baselines: dict[str, BaselineScores]  # trained on "train", keyed by the split scored


def positive_frequency(labels: NDArray[np.uint8]) -> ScoreArray:
    """(K,) fraction of rows whose label is 1."""
    return check_labels(labels, "labels").mean(axis=0, dtype=np.float64)


def imbalance_ratio(labels: NDArray[np.uint8]) -> ScoreArray:
    """(K,) majority-class count over minority-class count (>= 1; inf when a class never occurs)."""
    checked = check_labels(labels, "labels")
    positives = checked.sum(axis=0, dtype=np.int64)
    negatives = checked.shape[0] - positives
    majority = np.maximum(positives, negatives).astype(np.float64)
    minority = np.minimum(positives, negatives)
    return np.divide(majority, minority, out=np.full(majority.shape, np.inf), where=minority > 0)


def correlation_matrix(labels: NDArray[np.uint8]) -> ScoreArray:
    """(K, K) Pearson correlation of the binary columns (the phi coefficient).

    Entries involving a constant column are NaN (undefined), as with :func:`numpy.corrcoef`.
    """
    values = check_labels(labels, "labels").astype(np.float64)
    mean = values.mean(axis=0)
    covariance = values.T @ values / values.shape[0] - np.outer(mean, mean)
    std = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    scale = np.outer(std, std)
    correlation = np.divide(
        covariance, scale, out=np.full(covariance.shape, np.nan), where=scale > 0
    )
    diagonal = np.diag_indices_from(correlation)
    correlation[diagonal] = np.where(std > 0, 1.0, np.nan)
    return np.clip(correlation, -1.0, 1.0)


def split_counts(partition: NDArray[np.integer]) -> dict[str, int]:
    """Images per split (code -1 counts nowhere); raises ``ValueError`` on an unknown code."""
    codes = np.asarray(partition)
    bad = ~np.isin(codes, [NO_SPLIT, *SPLIT_CODES.values()])
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"partition code {int(codes[row])} at row {row} is not -1, 0, 1 or 2")
    return {name: int(np.count_nonzero(codes == code)) for name, code in SPLIT_CODES.items()}


def dataset_stats(
    labels: NDArray[np.uint8],
    partition: NDArray[np.integer] | None,
    names: tuple[str, ...] | list[str],
) -> DatasetStats:
    """All statistics of ``labels``; splits and baselines need ``partition`` (aligned with rows)."""
    checked = check_labels(labels, "labels")
    if len(names) != checked.shape[1]:
        raise ValueError(f"{len(names)} attribute names for {checked.shape[1]} label columns")
    counts: dict[str, int] = {}
    split_frequency: dict[str, ScoreArray] = {}
    baselines: dict[str, BaselineScores] = {}
    if partition is not None:
        if len(partition) != checked.shape[0]:
            raise ValueError(f"partition has {len(partition)} rows, labels {checked.shape[0]}")
        counts = split_counts(partition)
        by_split = {
            name: checked[np.asarray(partition) == code] for name, code in SPLIT_CODES.items()
        }
        split_frequency = {
            name: positive_frequency(rows) for name, rows in by_split.items() if len(rows)
        }
        if len(by_split["train"]):
            baselines = {
                target: baseline_scores(by_split["train"], by_split[target], names)
                for target in BASELINE_TARGETS
                if len(by_split[target])
            }
    return DatasetStats(
        names=tuple(names),
        count=checked.shape[0],
        frequency=positive_frequency(checked),
        imbalance=imbalance_ratio(checked),
        correlation=correlation_matrix(checked),
        split_counts=counts,
        split_frequency=split_frequency,
        baselines=baselines,
    )


def _frequency_figure(stats: DatasetStats) -> Figure:
    """Horizontal bars of the positive frequencies, most frequent attribute on top."""
    order = np.argsort(stats.frequency)
    percent = 100.0 * stats.frequency[order]
    figure = Figure(figsize=(8, 11), layout="constrained")
    axes = figure.add_subplot()
    bars = axes.barh(np.arange(len(order)), percent, color="tab:blue")
    axes.bar_label(bars, labels=[f"{p:.1f}%" for p in percent], padding=2, fontsize=8)
    axes.set_yticks(np.arange(len(order)), [stats.names[k] for k in order], fontsize=9)
    axes.set_ylim(-0.6, len(order) - 0.4)
    axes.set_xlim(0, 110)
    axes.axvline(50, color="grey", linestyle="--", linewidth=0.8)
    axes.set_xlabel("images with the attribute (%)")
    axes.set_title(f"Attribute frequency ({stats.count:,} images)")
    return figure


def correlation_figure(stats: DatasetStats) -> Figure:
    """Heatmap of the correlation matrix, diverging colours centred at 0, NaN in grey."""
    ticks = np.arange(len(stats.names))
    figure = Figure(figsize=(12, 11), layout="constrained")
    axes = figure.add_subplot()
    colours = colormaps["RdBu_r"].with_extremes(bad="lightgrey")
    image = axes.imshow(np.ma.masked_invalid(stats.correlation), cmap=colours, vmin=-1, vmax=1)
    axes.set_xticks(ticks, stats.names, rotation=90, fontsize=8)
    axes.set_yticks(ticks, stats.names, fontsize=8)
    axes.set_title(f"Attribute correlation (phi, {stats.count:,} images)")
    figure.colorbar(image, ax=axes, shrink=0.8, label="Pearson correlation")
    return figure


def _save_png(figure: Figure, path: Path) -> None:
    """Render ``figure`` with the Agg canvas (no display needed) to ``path``."""
    FigureCanvasAgg(figure).print_png(path)


def _write_correlation_csv(stats: DatasetStats, path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["attribute", *stats.names])
        for name, row in zip(stats.names, stats.correlation, strict=True):
            writer.writerow([name, *(f"{value:.6f}" for value in row)])


def _write_baselines_csv(stats: DatasetStats, path: Path) -> None:
    fields = ["split", "count", "attribute", "positive_class"]
    fields += ["majority_accuracy", "majority_f1", "minority_accuracy", "minority_f1"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for split, scores in stats.baselines.items():
            for record in scores.records():
                writer.writerow({"split": split, "count": scores.count, **record})


def _by_name(names: tuple[str, ...], values: ScoreArray) -> dict[str, float | None]:
    """``{name: value}``; infinities and NaN become ``None`` (JSON null)."""
    return {
        name: float(v) if math.isfinite(v) else None for name, v in zip(names, values, strict=True)
    }


def stats_document(stats: DatasetStats) -> dict[str, object]:
    """The JSON-ready summary: frequencies, imbalance (null: a class absent), splits, baselines."""
    return {
        "count": stats.count,
        "split_counts": stats.split_counts,
        "frequency": _by_name(stats.names, stats.frequency),
        "split_frequency": {
            split: _by_name(stats.names, values) for split, values in stats.split_frequency.items()
        },
        "imbalance": _by_name(stats.names, stats.imbalance),
        "baselines": {
            split: {
                "trained_on": "train",
                "count": scores.count,
                "f1_positive_class": "the minority class of each attribute in train (seed 000)",
                "mean_majority_accuracy": scores.mean_majority_accuracy,
                "mean_majority_f1": scores.mean_majority_f1,
                "mean_minority_accuracy": scores.mean_minority_accuracy,
                "mean_minority_f1": scores.mean_minority_f1,
                "attributes": scores.records(),
            }
            for split, scores in stats.baselines.items()
        },
    }


def write_stats(stats: DatasetStats, out_dir: Path) -> dict[str, Path]:
    """Write the charts, tables and JSON of ``stats`` into ``out_dir``; returns ``{kind: path}``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "frequencies": out_dir / "frequencies.png",
        "correlation": out_dir / "correlation.png",
        "correlation_csv": out_dir / "correlation.csv",
        "baselines_csv": out_dir / "baselines.csv",
        "stats_json": out_dir / "stats.json",
    }
    _save_png(_frequency_figure(stats), paths["frequencies"])
    _save_png(correlation_figure(stats), paths["correlation"])
    _write_correlation_csv(stats, paths["correlation_csv"])
    _write_baselines_csv(stats, paths["baselines_csv"])
    paths["stats_json"].write_text(json.dumps(stats_document(stats), indent=2) + "\n")
    return paths

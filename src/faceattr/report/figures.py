"""The report's charts as matplotlib figures (no display needed): training curves, per-attribute
error bars against the baseline, sample images with their labels marked right or wrong, and the
confusion matrices and predicted-against-true plots of categorical and numeric attributes.
(The correlation heatmap is :mod:`faceattr.data.stats`'s own.)"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray

RIGHT_COLOUR = "#1a7f37"
WRONG_COLOUR = "#cf222e"
BASELINE_COLOUR = "#9a9a9a"
GRID_COLUMNS = 4

Scores = NDArray[np.float64]
History = Mapping[str, Scores]


def yes_no(label: int | np.integer) -> str:
    """A label as seed 003's tables write it."""
    return "yes" if label else "no"


def _curve_axes(column: str) -> int | None:
    """0 for a loss, 1 for a mean accuracy, None for columns not drawn (lr, per-attribute)."""
    if column.endswith("loss"):
        return 0
    if column.endswith("mean_accuracy"):
        return 1
    return None


def training_curves(histories: Mapping[str, History]) -> Figure:
    """Losses (left) and mean accuracies (right) per epoch from ``metrics.csv`` columns; one line
    per run and metric (the run's name in the legend when there are several)."""
    figure = Figure(figsize=(11, 4), layout="constrained")
    panels = figure.subplots(1, 2)
    for run, history in histories.items():
        rows = len(next(iter(history.values()), []))
        epochs = history.get("epoch", np.arange(rows, dtype=np.float64)) + 1
        for column, values in history.items():
            panel = _curve_axes(column)
            logged = np.isfinite(values)
            if panel is None or not logged.any():
                continue
            label = f"{run}: {column}" if len(histories) > 1 else column
            panels[panel].plot(epochs[logged], values[logged], marker="o", label=label)
    for axes, what in zip(panels, ("loss", "mean accuracy"), strict=True):
        axes.set_xlabel("epoch")
        axes.set_ylabel(what)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend(fontsize=8)
        else:
            axes.text(0.5, 0.5, f"no {what} logged", ha="center", transform=axes.transAxes)
    panels[0].set_title("Losses")
    panels[1].set_title("Mean accuracy over the attributes")
    return figure


def error_bars(
    names: Sequence[str],
    errors: Mapping[str, Scores],
    baseline: Scores | None,
    title: str,
    baseline_label: str = "majority baseline",
) -> Figure:
    """Horizontal bars of each attribute's error (fractions, drawn in %): one bar per series of
    ``errors`` and the ``baseline``'s in grey; sorted by the first series, largest on top."""
    if not errors:
        raise ValueError("error_bars needs at least one series")
    series = [(label, np.asarray(values)) for label, values in errors.items()]
    colours = [f"C{i}" for i in range(len(series))]
    if baseline is not None:
        series.append((baseline_label, np.asarray(baseline)))
        colours.append(BASELINE_COLOUR)
    order = np.argsort(series[0][1], kind="stable")
    positions = np.arange(len(names))
    height = 0.8 / len(series)
    figure = Figure(
        figsize=(9, 1.2 + len(names) * (0.12 + 0.1 * len(series))), layout="constrained"
    )
    axes = figure.add_subplot()
    for i, ((label, values), colour) in enumerate(zip(series, colours, strict=True)):
        offset = ((len(series) - 1) / 2 - i) * height  # the first series on top of its group
        percent = 100.0 * values[order]
        bars = axes.barh(positions + offset, percent, height=height, color=colour, label=label)
        if len(series) <= 2:
            axes.bar_label(bars, labels=[f"{p:.1f}" for p in percent], padding=2, fontsize=7)
    axes.set_yticks(positions, [names[k] for k in order], fontsize=8)
    axes.set_ylim(-0.6, len(names) - 0.4)
    axes.set_xlabel("error (%)")
    axes.margins(x=0.08)
    axes.grid(axis="x", alpha=0.3)
    figure.legend(loc="outside lower center", ncols=min(len(series), 3), fontsize=8)
    axes.set_title(title)
    return figure


def sample_grid(
    images: NDArray[np.uint8],
    titles: Sequence[str],
    names: Sequence[str],
    predicted: NDArray[np.uint8],
    truth: NDArray[np.uint8],
) -> Figure:
    """Images ``(n, H, W, 3)``, each above its predicted label for every attribute of ``names``
    (``predicted``/``truth`` are (n, len(names))): green when right, red with the true label
    when wrong (seed 003, Fig. 3.5)."""
    count = len(images)
    if count == 0 or predicted.shape != truth.shape or predicted.shape != (count, len(names)):
        raise ValueError(
            f"sample_grid: {count} images, predicted {predicted.shape}, truth {truth.shape}, "
            f"{len(names)} attributes"
        )
    columns = min(GRID_COLUMNS, count)
    rows = math.ceil(count / columns)
    text_height = 0.18 * len(names) + 0.1
    figure = Figure(figsize=(2.4 * columns, rows * (2.4 + text_height)), layout="constrained")
    grid = figure.add_gridspec(2 * rows, columns, height_ratios=[2.2, text_height] * rows)
    for i in range(count):
        row, column = divmod(i, columns)
        image_axes = figure.add_subplot(grid[2 * row, column])
        image_axes.imshow(images[i])
        image_axes.set_axis_off()
        image_axes.set_title(titles[i], fontsize=8)
        text_axes = figure.add_subplot(grid[2 * row + 1, column])
        text_axes.set_axis_off()
        for j, name in enumerate(names):
            right = predicted[i, j] == truth[i, j]
            text = f"{'✓' if right else '✗'} {name}: {yes_no(predicted[i, j])}"
            if not right:
                text += f" (true {yes_no(truth[i, j])})"
            text_axes.text(
                0.0,
                1.0 - (j + 0.5) / len(names),
                text,
                color=RIGHT_COLOUR if right else WRONG_COLOUR,
                fontsize=8,
                va="center",
                transform=text_axes.transAxes,
            )
    return figure


def confusion_figure(confusion: NDArray[np.int64], classes: Sequence[str], title: str) -> Figure:
    """A categorical attribute's confusion matrix (rows: true class, columns: predicted), each
    cell shaded by its share of the true class and labelled with its count."""
    counts = np.asarray(confusion)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    side = 2.5 + 0.55 * len(classes)
    figure = Figure(figsize=(side + 1.2, side), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if shares[row, column] > 0.6 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=8)
    ticks = np.arange(len(classes))
    axes.set_xticks(ticks, list(classes), rotation=45, ha="right", fontsize=8)
    axes.set_yticks(ticks, list(classes), fontsize=8)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    figure.colorbar(image, ax=axes, label="share of the true class")
    axes.set_title(title)
    return figure


def numeric_figure(
    truth: Scores, predicted: Scores, unit: str, title: str, bins: int = 6
) -> Figure:
    """A numeric attribute's predicted against true values (left, the identity line dashed) and
    its mean absolute error within equal ranges of the true value (right, image counts above)."""
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    scatter, ranges = figure.subplots(1, 2)
    low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    scatter.scatter(truth, predicted, s=10, alpha=0.6)
    scatter.plot([low, high], [low, high], linestyle="--", color=BASELINE_COLOUR)
    suffix = f" ({unit})" if unit else ""
    scatter.set_xlabel(f"true{suffix}")
    scatter.set_ylabel(f"predicted{suffix}")
    scatter.grid(alpha=0.3)
    edges = np.linspace(float(truth.min()), float(truth.max()), bins + 1)
    which = np.clip(np.searchsorted(edges, truth, side="right") - 1, 0, bins - 1)
    error = np.abs(predicted - truth)
    counts = np.bincount(which, minlength=bins)
    sums = np.bincount(which, weights=error, minlength=bins)
    mae = np.divide(sums, counts, out=np.full(bins, np.nan), where=counts > 0)
    centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    bars = ranges.bar(centres, np.nan_to_num(mae), width=width * 0.9)
    ranges.bar_label(bars, labels=[f"n={n}" for n in counts], padding=2, fontsize=7)
    ranges.set_xlabel(f"true value range{suffix}")
    ranges.set_ylabel(f"mean absolute error{suffix}")
    ranges.grid(axis="y", alpha=0.3)
    figure.suptitle(title)
    return figure

"""Figures of the error slices, the robustness curves and the reliability diagrams, for the
evaluation report.

Each returns a matplotlib :class:`~matplotlib.figure.Figure` built without pyplot (no display,
no global state); save one with ``FigureCanvasAgg(figure).print_png(path)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from faceattr.evaluation.calibration import BINS, reliability_bins
from faceattr.evaluation.robustness import IDENTITY, TRANSFORM_KINDS, UNITS, RobustnessCurve
from faceattr.evaluation.slices import SliceTable


def slice_figure(table: SliceTable) -> Figure:
    """Heatmap of the accuracy gaps (group present minus absent), evaluated attributes down,
    grouping attributes across; flagged cells are framed and their gap printed in bold."""
    gaps = table.gap.T  # (K, G)
    flagged = table.flagged.T
    limit = max(2 * table.gap_threshold, float(np.nanmax(np.abs(gaps), initial=0.0)), 1e-3)
    rows, columns = gaps.shape
    figure = Figure(figsize=(2.0 + 1.1 * columns, 1.2 + 0.3 * rows), layout="constrained")
    axes = figure.add_subplot()
    colours = colormaps["RdBu"].with_extremes(bad="lightgrey")
    image = axes.imshow(
        np.ma.masked_invalid(gaps), cmap=colours, vmin=-limit, vmax=limit, aspect="auto"
    )
    for k, g in zip(*np.nonzero(np.isfinite(gaps)), strict=True):
        weight = "bold" if flagged[k, g] else "normal"
        axes.text(g, k, f"{gaps[k, g]:+.2f}", ha="center", va="center", fontsize=7, weight=weight)
        if flagged[k, g]:
            axes.add_patch(Rectangle((g - 0.5, k - 0.5), 1, 1, fill=False, linewidth=1.5))
    counts = [
        f"{name}\n{p} / {a}"
        for name, p, a in zip(table.groups, table.present_count, table.absent_count, strict=True)
    ]
    axes.set_xticks(np.arange(columns), counts, fontsize=8)
    axes.set_yticks(np.arange(rows), table.attributes, fontsize=8)
    axes.set_xlabel("grouping attribute (faces with / without)")
    axes.set_title(f"Accuracy gap, with minus without (framed: |gap| > {table.gap_threshold:g})")
    figure.colorbar(image, ax=axes, shrink=0.8, label="accuracy gap")
    return figure


def robustness_figure(curves: Mapping[str, Mapping[str, RobustnessCurve]]) -> Figure:
    """Mean accuracy against each transform, one panel per kind and one line per model:
    ``curves`` maps a model's label to its curves by kind (what ``robustness_curves`` returns)."""
    if not curves:
        raise ValueError("robustness_figure needs the curves of at least one model")
    kinds = [k for k in TRANSFORM_KINDS if any(k in by_kind for by_kind in curves.values())]
    if not kinds:
        raise ValueError("no robustness curve to draw")
    figure = Figure(figsize=(4.2 * len(kinds), 3.6), layout="constrained")
    panels = figure.subplots(1, len(kinds), squeeze=False, sharey=True)[0]
    for axes, kind in zip(panels, kinds, strict=True):
        for label, by_kind in curves.items():
            if kind in by_kind:
                curve = by_kind[kind]
                axes.plot(curve.values, curve.mean_accuracy, marker="o", label=label)
        axes.axvline(IDENTITY[kind], color="grey", linestyle="--", linewidth=0.8)
        axes.set_xlabel(UNITS[kind])
        axes.set_title(kind)
        axes.grid(alpha=0.3)
    panels[0].set_ylabel("mean accuracy")
    panels[-1].legend(fontsize=8)
    return figure


def reliability_figure(
    labels: np.ndarray,
    curves: Mapping[str, np.ndarray],
    attributes: Sequence[str],
    shown: Sequence[str],
    columns: int = 8,
) -> Figure:
    """Reliability diagrams of the attributes ``shown``: per panel, the frequency of positives
    against the mean probability of each of :data:`BINS` equal-mass bins, one line per entry of
    ``curves`` (name -> ``(N, K)`` probabilities, columns ``attributes`` as in ``labels``); the
    dotted diagonal is a calibrated model."""
    rows = -(-len(shown) // columns)
    side = 1.9 if columns > 4 else 3.0
    figure = Figure(figsize=(side * columns, side * rows + 0.5), layout="constrained")
    colours = ("#999", "#19d", "#d71")
    for panel, name in enumerate(shown):
        axes = figure.add_subplot(rows, columns, panel + 1)
        k = list(attributes).index(name)
        axes.plot([0, 1], [0, 1], color="black", linewidth=0.6, linestyle=":")
        for (label, probabilities), colour in zip(curves.items(), colours, strict=False):
            diagram = reliability_bins(labels[:, k], probabilities[:, k], BINS)
            axes.plot(diagram.confidence, diagram.frequency, marker=".", color=colour, label=label)
        axes.set(xlim=(0, 1), ylim=(0, 1), xticks=[0, 0.5, 1], yticks=[0, 0.5, 1])
        axes.set_title(name.replace("_", " "), fontsize=9)
        axes.tick_params(labelsize=7)
        if panel == 0:
            axes.legend(fontsize=7, loc="upper left")
    figure.supxlabel(f"mean probability ({BINS} equal-mass bins)", fontsize=9)
    figure.supylabel("frequency of the attribute", fontsize=9)
    return figure

"""The figure-bearing parts of ``faceattr evaluate``: error slices and robustness curves (issue 7),
reliability diagrams and risk-coverage curves (issue 17).

Slices split each attribute's accuracy on the primary protocol by the true value of a grouping
attribute (Male, Young, Eyeglasses, Pale_Skin) and flag large gaps. Robustness curves re-crop the
split's faces the way the model was trained, then rotate, scale or shift them at test time with the
training warp, and score the model at each amount. Reliability diagrams compare each attribute's
probabilities with the frequencies, before and after calibration. All are written beside
``eval.json`` as CSV and PNG, which the report embeds.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from faceattr.evaluation.calibration import MEASURES, CalibrationMetrics
from faceattr.evaluation.figures_ext import reliability_figure, robustness_figure, slice_figure
from faceattr.evaluation.robustness import RobustnessCurve, robustness_curves, robustness_inputs
from faceattr.evaluation.slices import SliceTable
from faceattr.models import AttributeModel
from faceattr.training.checkpoint import ModelDescription
from faceattr.training.config import DataConfig

SLICES_CSV = "slices.csv"
SLICES_PNG = "slices.png"
ROBUSTNESS_CSV = "robustness.csv"
ROBUSTNESS_PNG = "robustness.png"
WORST_SHOWN = 5
"""The reliability diagrams drawn larger: the attributes of largest ECE."""


def reliability_files(protocol: str) -> tuple[str, str, str]:
    """The per-attribute calibration table, the grid and the worst-five figure of ``protocol``."""
    return (
        f"calibration_{protocol}.csv",
        f"reliability_{protocol}.png",
        f"reliability_worst_{protocol}.png",
    )


def training_data_config(description: ModelDescription, root: Path) -> DataConfig:
    """The model's training ``data`` settings, reading ``root``, without subsetting."""
    settings = dict(description.config.get("data") or {})
    settings.update(root=str(root), limit_train=None, limit_val=None, workers=0)
    settings.pop("folds", None)
    settings.pop("fold", None)
    merged = OmegaConf.merge(OmegaConf.structured(DataConfig), settings)
    config = OmegaConf.to_object(merged)
    assert isinstance(config, DataConfig)
    return config


def model_robustness(
    model: AttributeModel,
    description: ModelDescription,
    root: Path,
    split: str,
    thresholds: np.ndarray,
    limit: int | None,
    progress: bool,
) -> dict[str, RobustnessCurve]:
    """Rotation, scale and shift curves of ``model`` on ``split`` of ``root``."""
    data = training_data_config(description, root)
    batches = robustness_inputs(data, model.attributes, model.input_config.size, split, limit)
    return robustness_curves(model, batches, thresholds=thresholds.tolist(), progress=progress)


def _save(figure: Figure, path: Path) -> Path:
    figure.savefig(path, dpi=110, bbox_inches="tight")
    return path


def write_slices(table: SliceTable, out: Path) -> dict[str, Path]:
    """``slices.csv`` (one row per slice) and ``slices.png`` (the gap heatmap)."""
    rows = table.to_rows()
    with (out / SLICES_CSV).open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]) if rows else ["group"])
        writer.writeheader()
        writer.writerows(rows)
    return {
        "slices_csv": out / SLICES_CSV,
        "slices_png": _save(slice_figure(table), out / SLICES_PNG),
    }


def write_robustness(
    curves: Mapping[str, RobustnessCurve], label: str, out: Path
) -> dict[str, Path]:
    """``robustness.csv`` (kind, value, mean accuracy) and ``robustness.png`` (one panel a kind)."""
    with (out / ROBUSTNESS_CSV).open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["kind", "value", "mean_accuracy"])
        for kind, curve in curves.items():
            for value, accuracy in zip(curve.values, curve.mean_accuracy, strict=True):
                writer.writerow([kind, value, f"{accuracy:.6f}"])
    figure = robustness_figure({label: curves})
    return {
        "robustness_csv": out / ROBUSTNESS_CSV,
        "robustness_png": _save(figure, out / ROBUSTNESS_PNG),
    }


def write_calibration(
    protocol: str,
    labels: np.ndarray,
    probabilities: Mapping[str, np.ndarray],
    measured: Mapping[str, CalibrationMetrics],
    out: Path,
) -> dict[str, Path]:
    """``calibration_<P>.csv`` (per attribute ECE, MCE, Brier, NLL and ECE floor of each entry of
    ``measured``, e.g. "raw" and "calibrated"), ``reliability_<P>.png`` (every attribute) and
    ``reliability_worst_<P>.png`` (the :data:`WORST_SHOWN` of largest ECE in the last entry)."""
    table, grid, worst = (out / name for name in reliability_files(protocol))
    last = list(measured.values())[-1]
    measures = MEASURES
    with table.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["attribute", *(f"{m}_{kind}" for kind in measured for m in measures)])
        for k, name in enumerate(last.attributes):
            values = [getattr(c, m)[k] for c in measured.values() for m in measures]
            writer.writerow([name, *(f"{v:.6f}" for v in values)])
    names = last.attributes
    shown = [names[k] for k in np.argsort(-last.ece, kind="stable")[:WORST_SHOWN]]
    return {
        f"calibration_{protocol}": table,
        f"reliability_{protocol}": _save(
            reliability_figure(labels, probabilities, names, names), grid
        ),
        f"reliability_worst_{protocol}": _save(
            reliability_figure(labels, probabilities, names, shown, columns=WORST_SHOWN), worst
        ),
    }

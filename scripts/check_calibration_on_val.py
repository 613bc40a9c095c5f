"""Does a calibration fitted on half of the val split help on the other half? No test image used.

    python scripts/check_calibration_on_val.py [MODEL] --root CELEBA [--splits 3]

MODEL is an export or run folder (default: the shipped model, whose own calibration is ignored:
its raw probabilities are scored). For each of ``--splits`` random halvings of the val split's
protocol A, ``fit_calibration`` (as ``faceattr evaluate --calibrate`` runs it) is fitted on one
half and the mean ECE, its floor and the NLL are measured on the other, raw and calibrated.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from faceattr.data.loaders import DatasetSource
from faceattr.evaluation.calibration import calibration_metrics, fit_calibration
from faceattr.evaluation.evaluate import ScoringOptions, validation_scores
from faceattr.models.calibration import METHODS
from faceattr.shipped import model_path
from faceattr.training.batch import CropSpec
from faceattr.training.checkpoint import load_checkpoint, load_description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, nargs="?", help="export or run folder (shipped)")
    parser.add_argument("--root", type=Path, required=True, help="the CelebA folder")
    parser.add_argument("--splits", type=int, default=3, help="random halvings of val")
    args = parser.parse_args()
    path = model_path(args.model)
    model, description = load_checkpoint(path), load_description(path)
    data_config = description.config.get("data", {})
    crop = CropSpec.of_config(data_config, model.input_config.size)
    source = DatasetSource.of({**data_config, "root": str(args.root)})
    data = source.load()
    options = ScoringOptions(device="cpu", progress=False)
    val = validation_scores(model, source, data, crop, options)
    labels, probabilities, names = val.labels, val.probabilities, val.attributes
    print(f"{description.model_name}: {len(labels):,} val images, protocol A, raw probabilities")
    for split in range(args.splits):
        order = np.random.default_rng(100 + split).permutation(len(labels))
        fit_rows, test_rows = order[: len(order) // 2], order[len(order) // 2 :]
        fit = fit_calibration(labels[fit_rows], probabilities[fit_rows], names, "val-half")
        held = labels[test_rows]
        raw = calibration_metrics(held, probabilities[test_rows], names).mean()
        mapped = fit.calibration.apply(probabilities[test_rows])
        calibrated = calibration_metrics(held, mapped, names).mean()
        wins = ", ".join(f"{m} {fit.calibration.methods.count(m)}" for m in METHODS)
        print(
            f"half {split}: {wins}; ECE {raw['ece']:.4f} -> {calibrated['ece']:.4f} (floor "
            f"{calibrated['ece_floor']:.4f}), NLL {raw['nll']:.4f} -> {calibrated['nll']:.4f}"
        )


if __name__ == "__main__":
    main()

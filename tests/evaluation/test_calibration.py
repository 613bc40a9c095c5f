"""Calibration measures equal the library references; fitted maps recover what made the data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import expit
from sklearn.calibration import calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import brier_score_loss, log_loss
from torchmetrics.functional.classification import binary_calibration_error

from faceattr.evaluation.calibration import (
    calibration_metrics,
    fit_calibration,
    fit_map,
    fit_temperature,
    reliability_bins,
)
from faceattr.evaluation.evaluate import choose_calibration
from faceattr.evaluation.scoring import ProtocolScores
from faceattr.models import create_model
from faceattr.models.calibration import Calibration
from faceattr.training.checkpoint import ModelDescription

NAMES = ("a", "b", "c")


def random_scores(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from skewed, miscalibrated probabilities."""
    rng = np.random.default_rng(seed)
    probabilities = rng.beta([0.5, 2.0, 5.0], [2.0, 2.0, 1.0], size=(n, 3))
    labels = (rng.random((n, 3)) < probabilities**1.5).astype(np.uint8)
    return labels, probabilities


@pytest.mark.parametrize("seed", [0, 1])
def test_measures_equal_the_libraries(seed: int) -> None:
    labels, probabilities = random_scores(seed)
    quantile = calibration_metrics(labels, probabilities, NAMES, bins=10)
    uniform = calibration_metrics(labels, probabilities, NAMES, bins=15, strategy="uniform")
    for k in range(3):
        y, p = labels[:, k], probabilities[:, k]
        frequency, confidence = calibration_curve(y, p, n_bins=10, strategy="quantile")
        bins = reliability_bins(y, p, 10)
        np.testing.assert_allclose(bins.frequency, frequency)
        np.testing.assert_allclose(bins.confidence, confidence)
        assert bins.count.sum() == len(y)
        preds, target = torch.tensor(p), torch.tensor(y)
        for value, norm in ((uniform.ece[k], "l1"), (uniform.mce[k], "max")):
            reference = binary_calibration_error(preds, target, n_bins=15, norm=norm)
            assert value == pytest.approx(float(reference), abs=1e-6)
        assert quantile.brier[k] == pytest.approx(brier_score_loss(y, p))
        assert quantile.nll[k] == pytest.approx(log_loss(y, p))
    assert quantile.mean()["ece"] == pytest.approx(quantile.ece.mean())


def test_a_calibrated_model_measures_about_its_floor_and_a_shifted_one_far_above() -> None:
    rng = np.random.default_rng(3)
    probabilities = rng.random((2000, 1))
    labels = (rng.random((2000, 1)) < probabilities).astype(np.uint8)
    calibrated = calibration_metrics(labels, probabilities, ("a",))
    assert 0.005 < calibrated.ece_floor[0] < 0.03  # 200 images a bin: not zero
    assert calibrated.ece[0] < 2 * calibrated.ece_floor[0]
    shifted = calibration_metrics(labels, probabilities**3, ("a",))
    assert shifted.ece[0] > 0.1 > 5 * shifted.ece_floor[0]


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.5])
def test_temperature_scaling_recovers_a_known_temperature(temperature: float) -> None:
    rng = np.random.default_rng(4)
    true_logits = rng.normal(0.0, 3.0, 20000)
    labels = (rng.random(20000) < expit(true_logits)).astype(np.uint8)
    overconfident = expit(true_logits * temperature)  # the model's logits are T times too large
    assert fit_temperature(labels, overconfident) == pytest.approx(temperature, rel=0.05)


def test_platt_and_isotonic_maps_apply_as_their_libraries_predict() -> None:
    labels, probabilities = random_scores(5)
    y, p = labels[:, 0], probabilities[:, 0]
    isotonic = fit_map("isotonic", y, p)
    margin = 0.5 / len(y)  # kept off 0 and 1
    reference = IsotonicRegression(y_min=margin, y_max=1 - margin, out_of_bounds="clip").fit(p, y)
    grid = np.linspace(-0.1, 1.1, 500)
    applied = Calibration(("a",), (isotonic,), "t").apply(grid[:, None])[:, 0]
    np.testing.assert_allclose(applied, reference.predict(grid), atol=1e-5)
    platt = fit_map("platt", y, p)
    assert platt.method == "platt" and platt.scale > 0


def test_fit_chooses_per_attribute_on_held_out_rows_and_lowers_the_nll() -> None:
    labels, probabilities = random_scores(6, n=4000)
    fit = fit_calibration(labels, probabilities, NAMES, "val-A")
    assert fit.folds == 5
    assert set(fit.heldout_nll) == {"none", "temperature", "platt", "isotonic"}
    calibrated = fit.calibration.apply(probabilities)
    before = calibration_metrics(labels, probabilities, NAMES)
    after = calibration_metrics(labels, calibrated, NAMES)
    assert (after.nll < before.nll).all() and (after.ece < before.ece).all()
    for k, method in enumerate(fit.calibration.methods):
        assert fit.heldout_nll[method][k] == min(v[k] for v in fit.heldout_nll.values())


def test_too_few_validation_images_fit_no_calibration() -> None:
    description = ModelDescription.of(create_model("facenet-mtl", ("Male", "Smiling")))
    labels, probabilities = random_scores(7, n=7)
    scores = ProtocolScores(
        "A", ("Male", "Smiling"), np.array(["x"] * 7), labels[:, :2], probabilities[:, None, :2]
    )
    use = choose_calibration(description, None, "accuracy", scores)
    assert use.calibration is None and use.source == "none (7 val images, fewer than 10)"

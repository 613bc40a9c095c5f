"""The risk-coverage curve: monotone coverage, the plain accuracy at full coverage, its area."""

from __future__ import annotations

import numpy as np
import pytest

from faceattr.evaluation.selective import risk_coverage, unsure


def test_curve_is_monotone_and_ends_at_full_coverage_with_the_plain_accuracy() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.random((500, 4))
    labels = (rng.random((500, 4)) < probabilities).astype(np.uint8)
    thresholds = np.array([0.5, 0.3, 0.7, 0.5])
    curve = risk_coverage(labels, probabilities, thresholds, ("a", "b", "c", "d"))
    assert (np.diff(curve.coverage, axis=0) <= 0).all()
    np.testing.assert_array_equal(curve.coverage[0], 1.0)
    plain = ((probabilities > thresholds) == labels).mean(axis=0)
    np.testing.assert_allclose(curve.accuracy[0], plain)
    # surer decisions are right more often here, so dropping the unsure ones helps
    assert (curve.accuracy[20] > curve.accuracy[0]).all()
    assert (curve.area < 1 - plain).all()


def test_area_averages_the_selective_risk_over_every_coverage() -> None:
    labels = np.array([[1], [0], [0], [1]], dtype=np.uint8)
    probabilities = np.array([[0.9], [0.85], [0.2], [0.3]])
    curve = risk_coverage(labels, probabilities, np.array([0.5]), ("a",))
    # kept surest first: right (risk 0), wrong (1/2), right (1/3), wrong (2/4)
    assert curve.area[0] == pytest.approx((0 + 1 / 2 + 1 / 3 + 2 / 4) / 4)


def test_unsure_is_strictly_within_the_band() -> None:
    flags = unsure(np.array([0.45, 0.35, 0.65, 0.5]), np.array(0.5), 0.1)
    assert flags.tolist() == [True, False, False, True]
    assert not unsure(np.array([0.5]), np.array(0.5), 0.0).any()

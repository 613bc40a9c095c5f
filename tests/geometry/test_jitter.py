"""AFFACT jitter: its draws, its switches and its matrices, in numbers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from faceattr.geometry import (
    AffactJitter,
    JitterParams,
    jitter_matrix,
    sample_jitter,
    transform_points,
)


def params(n: int = 1, **values: torch.Tensor) -> JitterParams:
    """Identity draws for ``n`` images with some fields replaced."""
    base = sample_jitter(n, AffactJitter.off(), 100)
    return dataclasses.replace(base, **values)


def test_off_draws_the_identity() -> None:
    drawn = sample_jitter(50, AffactJitter.off(), 64, torch.Generator().manual_seed(0))
    assert torch.equal(drawn.scale, torch.ones(50, dtype=torch.float64))
    assert not drawn.mirror.any() and drawn.angle.abs().max() == 0 and drawn.shift.abs().max() == 0
    assert drawn.blur_sigma.max() == 0 and torch.equal(drawn.gamma, drawn.scale)
    assert torch.equal(drawn.channel_gain, torch.ones(50, 3, dtype=torch.float64))
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(jitter_matrix(drawn, 64), identity.expand(50, 2, 3))


def test_draws_follow_the_configured_spread() -> None:
    cfg = AffactJitter(temperature_enabled=True)
    drawn = sample_jitter(20000, cfg, 112, torch.Generator().manual_seed(1))
    assert abs(torch.log2(drawn.scale).std().item() - 0.1) < 0.005
    assert abs(drawn.angle.std().item() - 20.0) < 0.5
    assert abs(drawn.shift[:, 0].std().item() - 0.05 * 112) < 0.15
    assert abs(drawn.mirror.double().mean().item() - 0.5) < 0.02
    # |N(0, 3)| at 224 pixels is |N(0, 1.5)| at 112; its mean is 1.5 * sqrt(2 / pi).
    assert abs(drawn.blur_sigma.mean().item() - 1.5 * np.sqrt(2 / np.pi)) < 0.05
    assert abs(torch.log2(drawn.gamma).std().item() - 1.0) < 0.03
    assert drawn.channel_gain.min() >= 0 and drawn.channel_gain.max() <= 1 + 1e-12


def test_switching_one_off_keeps_the_other_draws() -> None:
    full = sample_jitter(30, AffactJitter(), 224, torch.Generator().manual_seed(2))
    no_blur = sample_jitter(
        30, AffactJitter(blur_enabled=False), 224, torch.Generator().manual_seed(2)
    )
    assert torch.equal(full.angle, no_blur.angle) and torch.equal(full.gamma, no_blur.gamma)
    assert no_blur.blur_sigma.max() == 0 < full.blur_sigma.max()


def test_jitter_matrix_scales_rotates_and_shifts_about_the_centre() -> None:
    centre = torch.tensor([49.5, 49.5], dtype=torch.float64)
    points = torch.stack([centre, centre + torch.tensor([10.0, 0.0], dtype=torch.float64)])[None]
    scaled = transform_points(jitter_matrix(params(scale=torch.tensor([2.0])), 100), points)
    assert torch.allclose(
        scaled[0], torch.tensor([[49.5, 49.5], [69.5, 49.5]], dtype=torch.float64)
    )
    turned = transform_points(jitter_matrix(params(angle=torch.tensor([90.0])), 100), points)
    assert torch.allclose(turned[0, 1], torch.tensor([49.5, 59.5], dtype=torch.float64))
    moved = jitter_matrix(params(shift=torch.tensor([[3.0, -4.0]], dtype=torch.float64)), 100)
    assert torch.allclose(transform_points(moved, points)[0, 0], centre + torch.tensor([3.0, -4.0]))


def test_mirror_reflects_about_the_vertical_centre_line() -> None:
    flipped = jitter_matrix(params(mirror=torch.tensor([True])), 100)
    points = torch.tensor([[[0.0, 7.0], [30.0, 2.0]]], dtype=torch.float64)
    expected = torch.tensor([[[99.0, 7.0], [69.0, 2.0]]], dtype=torch.float64)
    assert torch.allclose(transform_points(flipped, points), expected)


@pytest.mark.parametrize(
    "bad",
    [
        {"scale_sigma": -1.0},
        {"mirror_p": 1.5},
        {"temperature_min": 5000.0, "temperature_max": 10.0},
    ],
)
def test_bad_config_is_a_clear_error(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="AffactJitter"):
        AffactJitter(**bad)  # type: ignore[arg-type]

"""Feature maps per convolutional stage: which layers end a stage for each model family, that the
hooks capture exactly those layers' outputs, and one grid tile per shown channel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from faceattr.explain.feature_maps import (
    GRID_PADDING,
    capture_feature_maps,
    conv_stages,
    feature_grid,
    strongest_channels,
)
from faceattr.models import AttributeModel, create_model


def random_inputs(model: AttributeModel, count: int = 2) -> torch.Tensor:
    config = model.input_config
    return torch.randn(
        (count, config.channels, *config.size), generator=torch.Generator().manual_seed(0)
    )


def test_facenet_stages_are_its_two_conv_blocks_as_in_seed_000_fig_8() -> None:
    model = create_model("facenet-mtl")
    stages = conv_stages(model)
    assert [s.name for s in stages] == ["2", "6"]  # the ReLU of each block, before its pooling
    assert all(isinstance(s.module, torch.nn.ReLU) for s in stages)

    inputs = random_inputs(model)
    maps = capture_feature_maps(model, inputs)
    assert [m.maps.shape for m in maps] == [(2, 4, 36, 36), (2, 16, 18, 18)]
    with torch.no_grad():
        expected = model.eval().backbone[:7](inputs)
    np.testing.assert_allclose(maps[1].maps, expected.numpy(), rtol=1e-6, atol=1e-6)


def test_timm_stages_follow_feature_info_and_torchvision_trunks_are_traced() -> None:
    timm_model = create_model("backbone", arch="mobilenetv3_small_100", input_size=[64, 64])
    declared = [info["module"] for info in timm_model.backbone.feature_info]
    timm_maps = capture_feature_maps(timm_model, random_inputs(timm_model, 1))
    assert [m.name for m in timm_maps] == declared
    assert [m.maps.shape[1:] for m in timm_maps] == [
        (16, 32, 32),
        (16, 16, 16),
        (24, 8, 8),
        (48, 4, 4),
        (576, 2, 2),
    ]

    torchvision_model = create_model("mobilenetv2", input_size=[64, 64])
    traced = capture_feature_maps(torchvision_model, random_inputs(torchvision_model, 1))
    assert [m.name for m in traced] == [f"features.{i}" for i in (1, 3, 6, 13, 18)]
    assert [m.maps.shape[2] for m in traced] == [32, 16, 8, 4, 2]  # strides 2 ... 32, as timm's


def test_capture_leaves_the_mode_and_batchnorm_statistics_alone() -> None:
    model = create_model("facenet-mtl").train()
    before = model.backbone[1].running_mean.clone()
    capture_feature_maps(model, random_inputs(model))
    assert model.training
    assert torch.equal(model.backbone[1].running_mean, before)


@pytest.mark.parametrize(("channels", "columns"), [(4, 2), (16, 4), (10, 4)])
def test_one_tile_per_channel(channels: int, columns: int) -> None:
    maps = np.random.default_rng(0).random((channels, 18, 18), dtype=np.float32)
    grid = feature_grid(maps, tile=36)
    assert grid.channels == tuple(range(channels)) and grid.total == channels
    assert grid.columns == columns
    rows = -(-channels // columns)
    tile = 18 * 2  # enlarged twice to reach 36 pixels
    assert grid.image.shape == (
        rows * (tile + GRID_PADDING) + GRID_PADDING,
        columns * (tile + GRID_PADDING) + GRID_PADDING,
        3,
    )
    assert grid.image.dtype == np.uint8


def test_wide_stages_show_their_most_active_channels() -> None:
    maps = np.zeros((576, 2, 2), dtype=np.float32)
    active = np.arange(3, 576, 9)  # 64 channels
    maps[active] = np.linspace(1, 2, len(active))[:, None, None]
    grid = feature_grid(maps, max_channels=64)
    assert grid.channels == tuple(active) and grid.total == 576 and grid.columns == 8
    assert strongest_channels(maps, 2) == (active[-2], active[-1])
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        strongest_channels(maps[0], 2)

"""What each convolutional stage of a model sees (seed 000, Fig. 8): forward hooks capture every
stage's output, and :func:`feature_grid` lays one stage's channels out as one image.

A *stage* ends where the backbone's resolution drops. timm backbones declare their stages
(``feature_info``: the module after which each stride applies); plain ``nn.Sequential`` trunks
(facenet-mtl, scratch-cnn, torchvision's MobileNetV2 ``features``) are traced once on a blank
input, and a stage is the last layer before a smaller resolution (or the trunk's last spatial
layer), pooling layers excepted: for facenet-mtl, the ReLU of each conv block.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from torch import nn
from torchvision.utils import make_grid

from faceattr.models import AttributeModel

POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)
"""Layers that only shrink the previous layer's maps (never a stage of their own)."""
COLORMAP = "viridis"
GRID_PADDING = 2


@dataclass(frozen=True)
class Stage:
    """One convolutional stage: ``name`` is the path of ``module`` inside the backbone."""

    name: str
    module: nn.Module


@dataclass(frozen=True)
class StageMaps:
    """The output ``maps`` ``(N, C, H, W)`` of the stage ``name`` for a batch."""

    name: str
    maps: np.ndarray


@dataclass(frozen=True)
class FeatureGrid:
    """One stage's maps of one image as an RGB grid ``image`` (uint8 ``(H, W, 3)``), one tile per
    shown channel: ``channels`` (their indices, in grid order) of ``total`` in the stage."""

    image: np.ndarray
    channels: tuple[int, ...]
    total: int
    columns: int


def forward_with_hooks(
    model: AttributeModel,
    inputs: torch.Tensor,
    modules: Sequence[nn.Module],
    on_output: Callable[[int, torch.Tensor], None],
) -> None:
    """One forward pass of ``inputs`` in eval mode without autograd, calling ``on_output(i,
    output)`` for each of ``modules`` that runs; the model's mode is restored after."""

    def hook_of(index: int) -> Callable[[nn.Module, object, torch.Tensor], None]:
        return lambda module, args, output: on_output(index, output)

    handles = [module.register_forward_hook(hook_of(i)) for i, module in enumerate(modules)]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(inputs)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()


def _sequential_trunk(backbone: nn.Module) -> tuple[str, nn.Sequential]:
    """The first ``nn.Sequential`` of ``backbone`` (itself included) holding convolutions."""
    for name, module in backbone.named_modules():
        if isinstance(module, nn.Sequential) and any(
            isinstance(m, nn.Conv2d) for m in module.modules()
        ):
            return name, module
    raise TypeError(
        f"{type(backbone).__name__}: no convolutional stages found (neither timm's feature_info "
        "nor a Sequential trunk of convolutions)"
    )


def _traced_stages(model: AttributeModel) -> list[Stage]:
    """Stages of a Sequential trunk: its spatial layers that a smaller resolution follows."""
    prefix, trunk = _sequential_trunk(model.backbone)
    names, children = zip(*trunk.named_children(), strict=True)
    areas: dict[int, int] = {}

    def record(index: int, output: torch.Tensor) -> None:
        if output.ndim == 4:
            areas[index] = output.shape[2] * output.shape[3]

    config = model.input_config
    blank = torch.zeros((1, config.channels, *config.size), device=model_device(model))
    forward_with_hooks(model, blank, children, record)
    spatial = sorted(areas)
    following = [areas[j] for j in spatial[1:]] + [0]
    return [
        Stage(f"{prefix}.{names[i]}" if prefix else names[i], children[i])
        for i, after in zip(spatial, following, strict=True)
        if after < areas[i] and not isinstance(children[i], POOLING)
    ]


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s parameters."""
    return next(model.parameters()).device


def conv_stages(model: AttributeModel) -> list[Stage]:
    """The convolutional stages of ``model``'s backbone, input to output (see the module doc)."""
    info = getattr(model.backbone, "feature_info", None)
    if isinstance(info, list) and info and all("module" in entry for entry in info):
        return [Stage(e["module"], model.backbone.get_submodule(e["module"])) for e in info]
    stages = _traced_stages(model)
    if not stages:
        raise TypeError(f"{model.model_name or type(model).__name__}: no convolutional stages")
    return stages


def capture_feature_maps(model: AttributeModel, inputs: torch.Tensor) -> list[StageMaps]:
    """Every stage's output for the normalised batch ``inputs`` ``(N, C, H, W)``, captured by
    forward hooks during one forward pass in eval mode."""
    stages = conv_stages(model)
    captured: dict[int, np.ndarray] = {}

    def keep(index: int, output: torch.Tensor) -> None:
        captured[index] = output.detach().float().cpu().numpy().copy()

    forward_with_hooks(model, inputs.to(model_device(model)), [s.module for s in stages], keep)
    return [StageMaps(stage.name, captured[i]) for i, stage in enumerate(stages)]


def strongest_channels(maps: np.ndarray, count: int) -> tuple[int, ...]:
    """Indices of the ``count`` channels of ``maps`` ``(C, H, W)`` with the largest mean
    activation, in channel order (all of them when there are no more than ``count``)."""
    if maps.ndim != 3:
        raise ValueError(f"expected one image's maps (C, H, W), got shape {maps.shape}")
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    if len(maps) <= count:
        return tuple(range(len(maps)))
    order = np.argsort(-maps.mean(axis=(1, 2)), kind="stable")[:count]
    return tuple(int(c) for c in np.sort(order))


def feature_grid(maps: np.ndarray, max_channels: int = 64, tile: int = 48) -> FeatureGrid:
    """One image's stage output ``maps`` ``(C, H, W)`` as a grid of colour-mapped tiles (each
    channel scaled to its own range, enlarged to about ``tile`` pixels without interpolation),
    at most ``max_channels`` of them (the strongest, see :func:`strongest_channels`)."""
    channels = strongest_channels(maps, max_channels)
    shown = torch.from_numpy(np.ascontiguousarray(maps[list(channels)], dtype=np.float32))
    low = shown.amin(dim=(1, 2), keepdim=True)
    span = (shown.amax(dim=(1, 2), keepdim=True) - low).clamp_min(1e-12)
    scaled = ((shown - low) / span).numpy()
    coloured = torch.from_numpy(colormaps[COLORMAP](scaled)[..., :3]).permute(0, 3, 1, 2)
    factor = max(1, round(tile / max(maps.shape[1:])))
    coloured = F.interpolate(coloured.float(), scale_factor=factor, mode="nearest")
    columns = math.ceil(math.sqrt(len(channels)))
    grid = make_grid(coloured, nrow=columns, padding=GRID_PADDING, pad_value=1.0)
    image = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return FeatureGrid(image, channels, len(maps), columns)

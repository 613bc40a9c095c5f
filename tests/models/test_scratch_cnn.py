"""Seed 001's from-scratch CNN."""

from __future__ import annotations

import math

import torch
from torch import nn

from faceattr.models import count_parameters, create_model


def test_layer_counts_and_parameters_match_the_seed() -> None:
    model = create_model("scratch-cnn")
    layers = list(model.backbone) + [model.head]
    assert sum(isinstance(m, nn.Conv2d) for m in layers) == 10
    assert sum(isinstance(m, nn.MaxPool2d) for m in layers) == 5
    assert sum(isinstance(m, nn.Linear) for m in layers) == 3
    assert count_parameters(model).trainable == 1_711_624  # the seed's stated count


def test_size_and_attributes_change_the_count_as_computed() -> None:
    model = create_model("scratch-cnn", attributes=["Male", "Smiling"], input_size=[64, 64])
    # 64 -> 2x2 after five pools: flatten 512; dense 512*512+512; heads 512*2+2
    convs = 1_711_624 - 1_049_088 - 262_656 - 20_520
    expected = convs + (512 * 512 + 512) + 262_656 + (512 * 2 + 2)
    assert count_parameters(model).trainable == expected


def _embedding_spread(init: str) -> float:
    """How much the embedding of 32 random images differs between images, at the start."""
    torch.manual_seed(0)
    model = create_model("scratch-cnn", input_size=[64, 64], init=init).eval()
    with torch.no_grad():
        embedding = model.backbone(torch.rand(32, 3, 64, 64))
    return float(embedding.std(dim=0).mean())


def test_starts_as_keras_and_he_keeps_the_signal_through_the_relu_stack() -> None:
    model = create_model("scratch-cnn", input_size=[64, 64])
    conv = next(m for m in model.backbone if isinstance(m, nn.Conv2d))
    fan_in, fan_out = 3 * 9, 32 * 9
    bound = math.sqrt(6 / (fan_in + fan_out))  # Keras' glorot_uniform
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    assert all(not m.bias.any() for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear))
    # twelve ReLU layers without normalisation: Glorot's start all but loses the image
    assert _embedding_spread("he") > 20 * _embedding_spread("glorot")

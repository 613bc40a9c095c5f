"""Seed 001's from-scratch CNN."""

from __future__ import annotations

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

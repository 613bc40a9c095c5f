"""Seed 001's from-scratch CNN: ten conv layers, five max-pools, three dense layers.

The seed states only the layer counts and "1,711,624 trainable parameters", no table. The plan
here reproduces that count exactly: five blocks of two 3x3 "same" convolutions + ReLU with
32, 32, 64, 64, 128 filters, each block closed by a 2x2 max-pool; on the seed's 150x150 RGB
input (the size of its transfer model) this leaves 4x4x128 = 2,048 features, then dense 512,
dense 512 and the 40 sigmoid outputs: 379,360 + 1,049,088 + 262,656 + 20,520 = 1,711,624.
Pixels are scaled to [0, 1] ("we normalize them to the 0:1 range"); no dropout, as in the seed.
Weights start as Keras' do (the seed's framework, ``init="glorot"``): Glorot-uniform kernels and
zero biases. Each of the twelve ReLU layers without normalisation then halves the signal, so a
random start answers almost the same for every face and stays at the majority for epochs of a
short budget; ``init="he"`` (He's uniform start, made for ReLU: the signal keeps its scale) is the
stated deviation that learns within one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import nn

from faceattr.attributes import ATTRIBUTES
from faceattr.models.base import AttributeModel, InputConfig, InputSize, Widths
from faceattr.models.outputs import Attributes, output_width
from faceattr.models.registry import register_model

Init = Literal["glorot", "he"]
"""Start of the weights: Keras' default (``glorot_uniform``) or He's (``he_uniform``)."""


def initialise(module: nn.Module, init: Init) -> None:
    """Start every convolution and dense layer of ``module`` with ``init`` kernels and zero
    biases, as Keras does."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            if init == "glorot":
                nn.init.xavier_uniform_(layer.weight)
            else:
                nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def scratch_trunk(
    filters: Sequence[int], dense: Sequence[int], input_size: tuple[int, int]
) -> nn.Sequential:
    """Conv blocks (two convs + ReLU, then max-pool, per entry of ``filters``), flatten, and the
    hidden dense layers + ReLU: image ``(N, 3, H, W)`` -> embedding ``(N, dense[-1])``."""
    layers: list[nn.Module] = []
    channels, (height, width) = 3, input_size
    for out in filters:
        layers += [
            nn.Conv2d(channels, out, 3, padding="same"),
            nn.ReLU(),
            nn.Conv2d(out, out, 3, padding="same"),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        channels, height, width = out, height // 2, width // 2
    if height < 1 or width < 1:
        raise ValueError(f"input {input_size} is too small for {len(filters)} max-pools")
    features = channels * height * width
    layers.append(nn.Flatten())
    for units in dense:
        layers += [nn.Linear(features, units), nn.ReLU()]
        features = units
    return nn.Sequential(*layers)


@register_model("scratch-cnn")
def scratch_cnn(
    attributes: Attributes = ATTRIBUTES,
    filters: Widths = (32, 32, 64, 64, 128),
    dense: Widths = (512, 512),
    input_size: InputSize = (150, 150),
    init: Init = "glorot",
) -> AttributeModel:
    """Seed 001's CNN (1,711,624 parameters with 40 attributes at 150x150), started by ``init``."""
    if not dense:
        raise ValueError("scratch-cnn needs at least one hidden dense layer")
    height, width = input_size
    config = InputConfig(size=(height, width), channels=3, mean=(0.0,) * 3, std=(1.0,) * 3)
    model = AttributeModel(
        attributes,
        config,
        scratch_trunk(filters, dense, config.size),
        nn.Linear(dense[-1], output_width(attributes)),
        embedding_dim=dense[-1],
        fixed_size=True,
    )
    initialise(model, init)
    return model

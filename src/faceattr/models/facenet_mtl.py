"""Seed 000's FaceNet: a tiny multi-task network for 36x36 grayscale faces.

The appendix table is the spec (kernel 3x3, padding "same", f1=4, f2=16, d=16)::

    conv f1 -> BN -> ReLU -> maxpool 2 -> conv f2 -> BN -> ReLU -> maxpool 2 -> flatten (1296)
    -> dense d -> BN -> ReLU -> one dense 2 + softmax per attribute

Keras reports 21,732 parameters with six heads: 21,660 trainable + 72 non-trainable, the 72 being
BatchNorm's moving means and variances (2 x (4 + 16 + 16)), which PyTorch keeps as buffers, not
parameters. BatchNorm uses Keras' defaults (epsilon 1e-3, momentum 0.99 = PyTorch's 0.01).
"FaceNet bis" (section III) is the same network with five heads, without gender.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from faceattr.models.base import AttributeModel, InputConfig, InputSize, KernelSize, Width
from faceattr.models.outputs import Attributes, as_schema, attribute_width
from faceattr.models.registry import register_model

FACENET_ATTRIBUTES: tuple[str, ...] = (
    "Male",
    "Mustache",
    "Eyeglasses",
    "No_Beard",
    "Wearing_Hat",
    "Bald",
)
"""The six heads in the appendix's order: gender, mustache, eyeglasses, beard, hat, bald."""
FACENET_BIS_ATTRIBUTES: tuple[str, ...] = FACENET_ATTRIBUTES[1:]

KERAS_BN_EPS = 1e-3
KERAS_BN_MOMENTUM = 0.01  # Keras' momentum 0.99, as PyTorch counts it


class TwoWayHeads(nn.Module):
    """One ``Linear(d, 2)`` per attribute; logits stacked to ``(N, K, 2)``."""

    def __init__(self, in_features: int, num_attributes: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(in_features, 2) for _ in range(num_attributes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Per-attribute 2-way logits ``(N, K, 2)``."""
        return torch.stack([head(features) for head in self.heads], dim=1)


class PerAttributeHeads(nn.Module):
    """One ``Linear(d, width_k)`` per attribute; outputs concatenated to ``(N, sum_k width_k)``."""

    def __init__(self, in_features: int, widths: Sequence[int]) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(in_features, w) for w in widths)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """The flat per-attribute outputs ``(N, W)``."""
        return torch.cat([head(features) for head in self.heads], dim=1)


def facenet_trunk(
    f1: int, f2: int, d: int, kernel_size: int, input_size: tuple[int, int]
) -> nn.Sequential:
    """The shared layers, image ``(N, 1, H, W)`` -> embedding ``(N, d)``."""
    height, width = input_size
    flat = f2 * (height // 2 // 2) * (width // 2 // 2)

    def conv_block(cin: int, cout: int) -> list[nn.Module]:
        return [
            nn.Conv2d(cin, cout, kernel_size, padding="same"),
            nn.BatchNorm2d(cout, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]

    return nn.Sequential(
        *conv_block(1, f1),
        *conv_block(f1, f2),
        nn.Flatten(),
        nn.Linear(flat, d),
        nn.BatchNorm1d(d, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM),
        nn.ReLU(),
    )


def facenet(
    attributes: Attributes, f1: int, f2: int, d: int, kernel_size: int, input_size: Sequence[int]
) -> AttributeModel:
    """FaceNet for any attribute list and hyperparameters (f1, f2, d): seed 000's 2-way softmax
    per attribute when all are binary, else one linear head per attribute of its width (a binary
    attribute's one logit is the 2-way softmax's ``z1 - z0``)."""
    height, width = input_size
    if height < 4 or width < 4:
        raise ValueError(f"FaceNet needs inputs of at least 4x4, got {height}x{width}")
    config = InputConfig(size=(height, width), channels=1, mean=(0.0,), std=(1.0,), grayscale=True)
    schema = as_schema(attributes)
    binary = all(a.kind == "binary" for a in schema.attributes)
    head = (
        TwoWayHeads(d, len(schema))
        if binary
        else PerAttributeHeads(d, [attribute_width(a) for a in schema.attributes])
    )
    return AttributeModel(
        schema,
        config,
        facenet_trunk(f1, f2, d, kernel_size, config.size),
        head,
        embedding_dim=d,
        head_type="softmax2" if binary else "sigmoid",
        fixed_size=True,
    )


@register_model("facenet-mtl")
def facenet_mtl(
    attributes: Attributes = FACENET_ATTRIBUTES,
    f1: Width = 4,
    f2: Width = 16,
    d: Width = 16,
    kernel_size: KernelSize = 3,
    input_size: InputSize = (36, 36),
) -> AttributeModel:
    """Seed 000's FaceNet, (f1, f2, d) = (4, 16, 16), six 2-way softmax heads."""
    return facenet(attributes, f1, f2, d, kernel_size, input_size)


@register_model("facenet-bis")
def facenet_bis(
    attributes: Attributes = FACENET_BIS_ATTRIBUTES,
    f1: Width = 4,
    f2: Width = 16,
    d: Width = 16,
    kernel_size: KernelSize = 3,
    input_size: InputSize = (36, 36),
) -> AttributeModel:
    """Seed 000's FaceNet bis: the same network with five heads (no gender)."""
    return facenet(attributes, f1, f2, d, kernel_size, input_size)

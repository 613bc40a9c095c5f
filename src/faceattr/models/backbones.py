"""ImageNet backbones (timm, and torchvision's MobileNetV2 for its offline weights) with the
seeds' heads (:mod:`faceattr.models.heads`).

Every backbone is built with random weights (``pretrained=False`` always); ImageNet weights come
from a local file through ``create_model(..., pretrained=PATH_OR_INSTALLED_NAME)``. Backbones end
in global average pooling, so any input size works; ``input_size`` only sets the model's
:class:`~faceattr.models.base.InputConfig`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torchvision
from torch import nn

from faceattr.attributes import ATTRIBUTES
from faceattr.models.base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    AttributeModel,
    Fraction,
    InputConfig,
    InputSize,
    Normalization,
    Width,
)
from faceattr.models.heads import build_head
from faceattr.models.outputs import Attributes, output_width
from faceattr.models.registry import register_model

UNIT_MEAN: tuple[float, float, float] = (0.0, 0.0, 0.0)
UNIT_STD: tuple[float, float, float] = (1.0, 1.0, 1.0)
"""Pixels scaled to [0, 1] and nothing more (Keras ``Rescaling(1/255)``, seed 002)."""
HALF: tuple[float, float, float] = (0.5, 0.5, 0.5)
"""Pixels mapped to [-1, 1] (Keras Xception and TF EfficientNet-Lite preprocessing)."""


@dataclass(frozen=True)
class Backbone:
    """A network mapping images to pooled embeddings ``(N, num_features)``; its ImageNet
    classifier's keys in weight files start with one of ``classifier_prefixes``."""

    module: nn.Module
    num_features: int
    classifier_prefixes: tuple[str, ...]


def timm_backbone(arch: str) -> Backbone:
    """timm's ``arch`` without its classifier (``num_classes=0``), randomly initialised."""
    import timm  # a second of start-up that torchvision's MobileNetV2 does not need

    if not timm.is_model(arch):
        raise KeyError(f"timm has no architecture {arch!r}")
    net = timm.create_model(arch, pretrained=False, num_classes=0)
    config: Any = net.pretrained_cfg
    classifier = config.get("classifier") or ()
    prefixes = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    # MobileNetV3 & co. pool `num_features` channels then project to `head_hidden_size`.
    width: Any = getattr(net, "head_hidden_size", None) or net.num_features
    return Backbone(net, int(width), prefixes)


def torchvision_mobilenet_v2() -> Backbone:
    """torchvision's MobileNetV2 (keys identical to its ImageNet file), classifier removed."""
    net = torchvision.models.mobilenet_v2(weights=None)
    net.classifier = nn.Identity()
    return Backbone(net, net.last_channel, ("classifier",))


TORCHVISION_BACKBONES: dict[str, Callable[[], Backbone]] = {
    "torchvision/mobilenet_v2": torchvision_mobilenet_v2,
}


def build_backbone(arch: str) -> Backbone:
    """A :data:`TORCHVISION_BACKBONES` name, or any timm architecture name."""
    builder = TORCHVISION_BACKBONES.get(arch)
    return builder() if builder else timm_backbone(arch)


def backbone_model(
    attributes: Attributes,
    arch: str,
    head: str,
    input_config: InputConfig,
    head_options: Mapping[str, Any] | None = None,
) -> AttributeModel:
    """Backbone ``arch`` + head ``head`` with one output per attribute."""
    backbone = build_backbone(arch)
    head_module = build_head(
        head, backbone.num_features, output_width(attributes), **(head_options or {})
    )
    return AttributeModel(
        attributes,
        input_config,
        backbone.module,
        head_module,
        embedding_dim=backbone.num_features,
        source_classifier_prefixes=backbone.classifier_prefixes,
    )


def rgb_input(
    size: Sequence[int],
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> InputConfig:
    """A 3-channel input config of ``size`` = (height, width)."""
    height, width = size
    return InputConfig(size=(height, width), channels=3, mean=tuple(mean), std=tuple(std))


@register_model("backbone")
def any_backbone(
    attributes: Attributes = ATTRIBUTES,
    arch: str = "resnet18",
    head: str = "linear",
    head_options: dict[str, Any] | None = None,
    input_size: InputSize = (224, 224),
    mean: Normalization = IMAGENET_MEAN,
    std: Normalization = IMAGENET_STD,
) -> AttributeModel:
    """Any timm architecture (or ``torchvision/mobilenet_v2``) with any head of ``HEADS``."""
    return backbone_model(attributes, arch, head, rgb_input(input_size, mean, std), head_options)


@register_model("resnet50-affact")
def resnet50_affact(
    attributes: Attributes = ATTRIBUTES, input_size: InputSize = (224, 224)
) -> AttributeModel:
    """Seed 003's ResNet-51-S / AFFACT network: ResNet-50, one linear 40-way layer, 224x224,
    ImageNet normalisation. (The seed's PyAffact code keeps ResNet's 1000-way layer + ReLU
    before its 40-way layer, hence "51"; here the pooled 2048-d features go straight to 40.)"""
    return backbone_model(attributes, "resnet50", "linear", rgb_input(input_size))


@register_model("resnet152-affact")
def resnet152_affact(
    attributes: Attributes = ATTRIBUTES, input_size: InputSize = (224, 224)
) -> AttributeModel:
    """Seed 003's ResNet-153-S: ResNet-152 with the same single linear 40-way layer."""
    return backbone_model(attributes, "resnet152", "linear", rgb_input(input_size))


@register_model("resnet50-affact-ext")
def resnet50_affact_ext(
    attributes: Attributes = ATTRIBUTES,
    input_size: InputSize = (224, 224),
    hidden: Width = 40,
    negative_slope: float = 0.01,
) -> AttributeModel:
    """Seed 003's AFFACT-Ext: ResNet-50, FC 40 + leaky ReLU, then the 40-way layer."""
    options = {"hidden": hidden, "negative_slope": negative_slope}
    return backbone_model(attributes, "resnet50", "affact-ext", rgb_input(input_size), options)


@register_model("xception-transfer")
def xception_transfer(
    attributes: Attributes = ATTRIBUTES,
    input_size: InputSize = (150, 150),
    dropout: Fraction = 0.2,
) -> AttributeModel:
    """Seed 001's transfer model: Keras' Xception (timm ``legacy_xception``), global average
    pooling, dropout, dense 40 with sigmoid; 150x150, pixels in [-1, 1]. The seed gives no
    dropout rate: 0.2 is that of the Keras transfer-learning guide it follows. The backbone has
    Keras' Xception count (20,861,480 with BatchNorm statistics)."""
    config = rgb_input(input_size, HALF, HALF)
    return backbone_model(attributes, "legacy_xception", "linear", config, {"dropout": dropout})


@register_model("efficientnetv2-multioutput")
def efficientnetv2_multioutput(
    attributes: Attributes = ("Male", "Smiling", "Young"),
    input_size: InputSize = (224, 224),
    dropout: Fraction = 0.2,
    hidden: Width = 128,
) -> AttributeModel:
    """Seed 002: EfficientNetV2-B0 features (timm ``tf_efficientnetv2_b0``), dropout 0.2, dense
    128 + ReLU, one sigmoid output per chosen attribute (default Male, Smiling, Young); 224x224,
    pixels in [0, 1]. Counted the Keras way it has the seed's 6,083,667 parameters exactly
    (5,919,312 backbone + 164,355 head). The seed's L2 of 1e-4 on the output kernels is left to
    the optimizer."""
    config = rgb_input(input_size, UNIT_MEAN, UNIT_STD)
    options = {"dropout": dropout, "hidden": hidden}
    return backbone_model(attributes, "tf_efficientnetv2_b0", "mlp", config, options)


@register_model("resnet50-classweights")
def resnet50_classweights(
    attributes: Attributes = ATTRIBUTES,
    input_size: InputSize = (64, 64),
    dropout: Fraction = 0.3,
    num_features: Width = 512,
) -> AttributeModel:
    """Seed 004's ResNet50: dropout 0.3 and a 512-feature layer before the 40 outputs; 64x64,
    ImageNet normalisation (train it with ``pos_weight_from_labels``)."""
    options = {"dropout": dropout, "hidden": num_features}
    return backbone_model(attributes, "resnet50", "mlp", rgb_input(input_size), options)


@register_model("densenet121-classweights")
def densenet121_classweights(
    attributes: Attributes = ATTRIBUTES,
    input_size: InputSize = (64, 64),
    dropout: Fraction = 0.3,
    num_features: Width = 512,
) -> AttributeModel:
    """Seed 004's DenseNet121 with the same head as ``resnet50-classweights``."""
    options = {"dropout": dropout, "hidden": num_features}
    return backbone_model(attributes, "densenet121", "mlp", rgb_input(input_size), options)


@register_model("mobilenetv2")
def mobilenetv2(
    attributes: Attributes = ATTRIBUTES,
    input_size: InputSize = (224, 224),
    dropout: Fraction = 0.2,
) -> AttributeModel:
    """torchvision's MobileNetV2 + dropout + linear layer; loads the offline ImageNet file
    (``pretrained="mobilenet_v2-imagenet"``) key for key."""
    config = rgb_input(input_size)
    options = {"dropout": dropout}
    return backbone_model(attributes, "torchvision/mobilenet_v2", "linear", config, options)


@register_model("mobilenetv3")
def mobilenetv3(
    attributes: Attributes = ATTRIBUTES,
    input_size: InputSize = (224, 224),
    dropout: Fraction = 0.2,
) -> AttributeModel:
    """timm's MobileNetV3-Large 1.0 + dropout + linear layer."""
    config = rgb_input(input_size)
    options = {"dropout": dropout}
    return backbone_model(attributes, "mobilenetv3_large_100", "linear", config, options)


@register_model("efficientnet-lite0")
def efficientnet_lite0(
    attributes: Attributes = ATTRIBUTES,
    input_size: InputSize = (224, 224),
    dropout: Fraction = 0.2,
) -> AttributeModel:
    """EfficientNet-Lite0 with TF 'same' padding (timm ``tf_efficientnet_lite0``) + dropout +
    linear layer; pixels in [-1, 1]; loads ``pretrained="efficientnet_lite0-imagenet"``."""
    config = rgb_input(input_size, HALF, HALF)
    options = {"dropout": dropout}
    return backbone_model(attributes, "tf_efficientnet_lite0", "linear", config, options)

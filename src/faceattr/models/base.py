"""The model contract every network of the registry fulfils.

An :class:`AttributeModel` is a ``backbone`` (image -> embedding ``(N, D)``) followed by a ``head``
(embedding -> logits). The preprocessing it expects travels with it as an :class:`InputConfig`
(like timm's ``pretrained_cfg``), and ``model_name`` + ``model_args`` rebuild it through
:func:`faceattr.models.create_model`, which is what a checkpoint stores.

A model knows its attribute :class:`~faceattr.data.schema.Schema`, kinds included: its outputs are
one flat vector with a slice per attribute (:class:`~faceattr.models.outputs.OutputLayout`;
binary: 1 logit, categorical: a logit per class, numeric: a logit per bin), and
:meth:`AttributeModel.attribute_outputs` turns them into P(present), class probabilities and
numeric estimates. Two head types exist: ``"sigmoid"`` (that flat vector; for binary attributes
``(N, K)``, one independent sigmoid per attribute) and ``"softmax2"`` (logits ``(N, K, 2)``, seed
000's 2-way softmax per attribute, class 1: present; binary attributes only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Annotated, Any, Literal, get_args

import torch
from pydantic import Field
from torch import nn

from faceattr.models.outputs import Attributes, OutputLayout, as_schema, binary_logits

HeadType = Literal["sigmoid", "softmax2"]
HEAD_TYPES: tuple[str, ...] = get_args(HeadType)

MAX_INPUT_SIDE = 1024
"""Largest input height or width a model may declare (the detector works at 640 px)."""
MAX_WIDTH = 8192
"""Most channels or units a layer may have."""
MAX_KERNEL = 15
MAX_LAYERS = 32
InputSide = Annotated[int, Field(ge=1, le=MAX_INPUT_SIDE)]
InputSize = Annotated[Sequence[InputSide], Field(min_length=2, max_length=2)]
"""A model's ``input_size`` argument: (height, width), each at most :data:`MAX_INPUT_SIDE`."""
Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
"""Channels or units of one layer."""
Widths = Annotated[Sequence[Width], Field(min_length=1, max_length=MAX_LAYERS)]
"""One width per layer."""
KernelSize = Annotated[int, Field(ge=1, le=MAX_KERNEL)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
"""A rate in [0, 1], such as a dropout probability."""
Normalization = Annotated[Sequence[float], Field(min_length=1, max_length=3)]
"""Per-channel mean or std."""

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputConfig:
    """What a model expects: ``size`` (height, width), ``channels``, per-channel ``mean``/``std``
    applied to pixels scaled to [0, 1], and whether colour images are converted to ``grayscale``."""

    size: tuple[int, int]
    channels: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    grayscale: bool = False

    def __post_init__(self) -> None:
        height, width = self.size
        if height <= 0 or width <= 0:
            raise ValueError(f"input size must be positive, got {self.size}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(
                f"mean {self.mean} and std {self.std} need one value per channel ({self.channels})"
            )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")
        if self.channels == 1 and not self.grayscale:
            raise ValueError("a 1-channel input must be grayscale")

    def with_size(self, size: Sequence[int]) -> InputConfig:
        """The same preprocessing at another ``(height, width)``."""
        return replace(self, size=_hw(size))

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``(images - mean) / std`` for a float batch ``(N, C, H, W)`` scaled to [0, 1]."""
        if images.ndim != 4 or images.shape[1] != self.channels:
            raise ValueError(
                f"expected a batch (N, {self.channels}, H, W), got {tuple(images.shape)}"
            )
        mean = torch.tensor(self.mean, dtype=images.dtype, device=images.device)
        std = torch.tensor(self.std, dtype=images.dtype, device=images.device)
        return (images - mean[:, None, None]) / std[:, None, None]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists for tuples); :meth:`from_dict` reads it back."""
        return {key: list(v) if isinstance(v, tuple) else v for key, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputConfig:
        """Rebuild from :meth:`to_dict`'s output; an unknown key is an error that names it."""
        unknown = set(data) - {"size", "channels", "mean", "std", "grayscale"}
        if unknown:
            raise ValueError(f"unknown InputConfig keys: {sorted(unknown)}")
        return cls(
            size=_hw(data["size"]),
            channels=int(data.get("channels", 3)),
            mean=tuple(float(v) for v in data.get("mean", IMAGENET_MEAN)),
            std=tuple(float(v) for v in data.get("std", IMAGENET_STD)),
            grayscale=bool(data.get("grayscale", False)),
        )


def _hw(size: Sequence[int] | int) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    if len(size) != 2:
        raise ValueError(f"size must be (height, width), got {size!r}")
    return int(size[0]), int(size[1])


CPU_BATCH = 4
"""Images per forward pass on a CPU. A larger batch allocates activations above glibc's mmap
threshold (32 MB), which are mapped, zero-filled page by page and unmapped on every pass: a
MobileNetV2 at 160x160 on 256 images spent 3x more system than user time in those page faults
(``benchmarks/evaluate_cpu.py``)."""


def cpu_batches(images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``images`` split into :data:`CPU_BATCH`-image batches on a CPU; whole on a GPU."""
    return images.split(CPU_BATCH) if images.device.type == "cpu" else (images,)


def logits_to_probabilities(outputs: torch.Tensor, head_type: str) -> torch.Tensor:
    """P(attribute present), ``(N, K)``, from a binary-only model's raw outputs for its
    ``head_type``."""
    return torch.sigmoid(binary_logits(outputs, head_type))


class AttributeModel(nn.Module):
    """A backbone producing an embedding and a head producing per-attribute logits.

    ``source_classifier_prefixes`` name the keys of the backbone's original classifier in
    pretrained files (e.g. ``"fc"`` for ResNet), which a local ImageNet file carries but the
    backbone does not. ``fixed_size`` models (flattening conv trunks) accept only
    ``input_config.size``.
    """

    def __init__(
        self,
        attributes: Attributes,
        input_config: InputConfig,
        backbone: nn.Module,
        head: nn.Module,
        embedding_dim: int,
        head_type: HeadType = "sigmoid",
        fixed_size: bool = False,
        source_classifier_prefixes: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        schema = as_schema(attributes)  # SchemaError naming a malformed or repeated name
        if not len(schema):
            raise ValueError("a model needs at least one attribute")
        if head_type not in HEAD_TYPES:
            raise ValueError(f"unknown head type {head_type!r}; known: {', '.join(HEAD_TYPES)}")
        self.layout = OutputLayout(schema)  # a ValueError for a numeric attribute without range
        if head_type != "sigmoid" and not self.layout.binary_only:
            raise ValueError(f"a {head_type!r} head has binary attributes only")
        self.schema = schema
        self.attributes: tuple[str, ...] = schema.names
        self.input_config = input_config
        self.backbone = backbone
        self.head = head
        self.embedding_dim = embedding_dim
        self.head_type: HeadType = head_type
        self.fixed_size = fixed_size
        self.source_classifier_prefixes = source_classifier_prefixes
        self.model_name = ""
        self.model_args: dict[str, Any] = {}
        self.backbone_frozen = False
        self.test_time_mirror = False
        """In eval mode, average each face's outputs with its mirror image's (set through
        ``create_model(..., test_time_mirror=True)``, so that checkpoints keep it)."""

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """The embedding ``(N, D)`` of a normalised batch ``(N, C, H, W)``."""
        self._check_input(images)
        return self.backbone(images)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from embeddings: ``(N, K)`` or, for ``"softmax2"``, ``(N, K, 2)``."""
        return self.head(features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of a normalised batch (see :meth:`forward_head` for the shape)."""
        return self.logits_and_features(images)[0]

    def logits_and_features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and embeddings of a normalised batch; with ``test_time_mirror`` in eval mode,
        both are the means over each image and its horizontal mirror."""
        if not self.test_time_mirror or self.training:
            features = self.forward_features(images)
            return self.forward_head(features), features
        count = images.shape[0]  # one pass over both views: half the per-call overhead
        features = self.forward_features(torch.cat([images, images.flip(-1)]))
        logits = self.forward_head(features)
        return (logits[:count] + logits[count:]) / 2, (features[:count] + features[count:]) / 2

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """P(attribute present) ``(N, K)`` for a normalised batch (binary attributes only: see
        :meth:`attribute_outputs` for the others)."""
        if not self.layout.binary_only:
            raise ValueError("probabilities() is for binary attributes; use attribute_outputs()")
        return logits_to_probabilities(self(images), self.head_type)

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{attribute: output}`` from raw outputs: P(present) ``(N,)`` for a binary attribute,
        class probabilities ``(N, C)`` for a categorical one, the expected value ``(N,)`` in its
        unit for a numeric one."""
        return self.layout.decode(binary_logits(outputs, self.head_type))

    def attribute_outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-attribute outputs (see :meth:`decode`) of a normalised batch."""
        return self.decode(self(images))

    def train(self, mode: bool = True) -> AttributeModel:
        """Like ``nn.Module.train``, but a frozen backbone stays in eval mode, so its BatchNorm
        statistics stay frozen too (Keras' ``trainable = False``)."""
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self

    def _check_input(self, images: torch.Tensor) -> None:
        config = self.input_config
        if images.ndim != 4 or images.shape[1] != config.channels:
            raise ValueError(
                f"{self.model_name or type(self).__name__} expects (N, {config.channels}, H, W) "
                f"inputs, got {tuple(images.shape)}"
            )
        if self.fixed_size and tuple(images.shape[2:]) != config.size:
            height, width = config.size
            raise ValueError(
                f"{self.model_name or type(self).__name__} expects {height}x{width} inputs, "
                f"got {images.shape[2]}x{images.shape[3]}"
            )

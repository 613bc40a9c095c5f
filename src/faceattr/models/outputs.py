"""How a model's flat output vector maps onto its attributes, by kind.

A model's head produces one vector per image, ``(N, W)``, with a slice per attribute in schema
order:

- ``binary``: 1 logit; the output is P(present) = sigmoid(logit);
- ``categorical``: one logit per class; the output is softmax over them, ``(N, C)``;
- ``numeric``: one logit per integer bin ``low, low + 1, ..., high`` (in the attribute's unit); the
  output is the expectation ``sum_b softmax(z)_b * value_b`` in that unit (DLDL-v2, Gao et al.
  2018: a label *distribution* over the bins is learnt, the expectation is the estimate).

For a binary-only schema this is exactly the ``(N, K)`` logit matrix the seeds' heads produce
(``"softmax2"`` heads, seed 000's, are binary only and go through :func:`binary_logits`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from faceattr.data.schema import Attribute, Schema

MAX_NUMERIC_BINS = 1024
"""Most integer bins a numeric attribute may span (``high - low + 1``)."""

Attributes = Sequence[str] | Schema
"""What a model is built for: attribute names (all binary) or a :class:`Schema` with kinds."""


def as_schema(attributes: Attributes) -> Schema:
    """``attributes`` as a :class:`Schema` (names: binary attributes)."""
    return attributes if isinstance(attributes, Schema) else Schema.binary(tuple(attributes))


def numeric_bins(attribute: Attribute) -> torch.Tensor:
    """The values of a numeric attribute's bins, ``low, low + 1, ..., high`` (float32); a
    ``ValueError`` when its range is not declared or spans more than :data:`MAX_NUMERIC_BINS`."""
    if attribute.kind != "numeric":
        raise ValueError(f"{attribute.name} is {attribute.kind}, not numeric")
    low, high = attribute.low, attribute.high
    if low is None or high is None or not high > low:
        raise ValueError(
            f"{attribute.name}: a numeric attribute needs its range (low < high) to be learnt "
            "(declare low and high, or leave it out with data.attributes), "
            f"got low={low}, high={high}"
        )
    count = int(high - low) + 1
    if count > MAX_NUMERIC_BINS:
        raise ValueError(
            f"{attribute.name}: {low}..{high} spans {count} unit bins (at most {MAX_NUMERIC_BINS})"
        )
    return float(low) + torch.arange(count, dtype=torch.float32, device="cpu")


def attribute_width(attribute: Attribute) -> int:
    """How many outputs ``attribute`` takes: 1, its class count, or its bin count."""
    if attribute.kind == "binary":
        return 1
    if attribute.kind == "categorical":
        return len(attribute.classes)
    return len(numeric_bins(attribute))


def decoded_width(attribute: Attribute) -> int:
    """How many numbers ``attribute``'s decoded output takes in a flat row
    (:meth:`OutputLayout.flat_decode`): its class count when categorical, else 1."""
    return len(attribute.classes) if attribute.kind == "categorical" else 1


def split_decoded(schema: Schema, flat: np.ndarray) -> dict[str, np.ndarray]:
    """``{name: output}`` of flat decoded rows ``(..., V)``: ``(...)`` P(present) or value,
    ``(..., C)`` class probabilities (the inverse of :meth:`OutputLayout.flat_decode`)."""
    widths = [decoded_width(a) for a in schema.attributes]
    if flat.shape[-1] != sum(widths):
        raise ValueError(f"{flat.shape[-1]} decoded outputs for {sum(widths)} of {schema.names}")
    starts = np.cumsum([0, *widths])
    return {
        a.name: flat[..., start : start + width] if a.kind == "categorical" else flat[..., start]
        for a, width, start in zip(schema.attributes, widths, starts, strict=False)
    }


def output_width(attributes: Attributes) -> int:
    """The length of a model's output vector for ``attributes``."""
    return sum(attribute_width(a) for a in as_schema(attributes).attributes)


def binary_logits(outputs: torch.Tensor, head_type: str) -> torch.Tensor:
    """One logit per attribute, ``(N, K)``: the outputs themselves for ``"sigmoid"``, and
    ``z1 - z0`` for ``"softmax2"`` (``softmax([z0, z1])[1] == sigmoid(z1 - z0)`` exactly)."""
    if head_type == "sigmoid":
        if outputs.ndim != 2:
            raise ValueError(f"sigmoid outputs must be (N, K), got {tuple(outputs.shape)}")
        return outputs
    if head_type == "softmax2":
        if outputs.ndim != 3 or outputs.shape[-1] != 2:
            raise ValueError(f"softmax2 outputs must be (N, K, 2), got {tuple(outputs.shape)}")
        return outputs[..., 1] - outputs[..., 0]
    raise ValueError(f"unknown head type {head_type!r}; known: sigmoid, softmax2")


@dataclass(frozen=True)
class OutputLayout:
    """The slice of a flat output vector that belongs to each attribute of ``schema``."""

    schema: Schema
    slices: tuple[slice, ...] = field(init=False)
    bins: dict[str, torch.Tensor] = field(init=False, compare=False)
    """Each numeric attribute's bin values."""

    def __post_init__(self) -> None:
        slices: list[slice] = []
        start = 0
        for attribute in self.schema.attributes:
            width = attribute_width(attribute)
            slices.append(slice(start, start + width))
            start += width
        object.__setattr__(self, "slices", tuple(slices))
        bins = {a.name: numeric_bins(a) for a in self.schema.attributes if a.kind == "numeric"}
        object.__setattr__(self, "bins", bins)

    @property
    def width(self) -> int:
        """The length of the output vector."""
        return self.slices[-1].stop if self.slices else 0

    @property
    def binary_only(self) -> bool:
        """Whether every attribute is binary (the output is the ``(N, K)`` logit matrix)."""
        return all(a.kind == "binary" for a in self.schema.attributes)

    def columns(self, kind: str) -> list[int]:
        """The schema columns of the attributes of ``kind``."""
        return [k for k, a in enumerate(self.schema.attributes) if a.kind == kind]

    def split(self, outputs: torch.Tensor) -> list[torch.Tensor]:
        """Per attribute, its logits: ``(N,)`` for binary, ``(N, C)`` or ``(N, B)`` otherwise."""
        if outputs.ndim != 2 or outputs.shape[1] != self.width:
            raise ValueError(
                f"outputs {tuple(outputs.shape)} do not fit {len(self.schema)} attributes "
                f"of {self.width} outputs"
            )
        return [
            outputs[:, s.start] if a.kind == "binary" else outputs[:, s]
            for a, s in zip(self.schema.attributes, self.slices, strict=True)
        ]

    def binary_logits(self, outputs: torch.Tensor) -> torch.Tensor:
        """The logits of the binary attributes, ``(N, K_binary)``, in schema order."""
        columns = [self.slices[k].start for k in self.columns("binary")]
        return outputs if self.binary_only else outputs[:, columns]

    def decode(self, outputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{name: output}``: P(present) ``(N,)``, class probabilities ``(N, C)``, or the
        expectation ``(N,)`` in the attribute's unit."""
        decoded: dict[str, torch.Tensor] = {}
        for attribute, logits in zip(self.schema.attributes, self.split(outputs), strict=True):
            if attribute.kind == "binary":
                decoded[attribute.name] = torch.sigmoid(logits)
            elif attribute.kind == "categorical":
                decoded[attribute.name] = torch.softmax(logits, dim=-1)
            else:
                bins = self.bins[attribute.name].to(logits)
                decoded[attribute.name] = torch.softmax(logits, dim=-1) @ bins
        return decoded

    def flat_decode(self, outputs: torch.Tensor) -> torch.Tensor:
        """The decoded outputs side by side, ``(N, V)``: per attribute P(present), its class
        probabilities or its expected value (:func:`decoded_width` columns each)."""
        return torch.cat([v.reshape(len(v), -1) for v in self.decode(outputs).values()], dim=1)

    def point_estimates(self, outputs: torch.Tensor) -> torch.Tensor:
        """``(N, K)`` in label coordinates: P(present), the most probable class index, or the
        expectation: what the labels of a :class:`~faceattr.data.record.FaceDataset` hold."""
        columns: list[torch.Tensor] = []
        for attribute, value in zip(
            self.schema.attributes, self.decode(outputs).values(), strict=True
        ):
            columns.append(
                value.argmax(dim=-1).to(value) if attribute.kind == "categorical" else value
            )
        return torch.stack(columns, dim=1)

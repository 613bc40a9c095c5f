"""A model's probability calibration: one monotone map per attribute, raw -> calibrated probability.

Three kinds of map, fitted on validation scores (``faceattr.evaluation.calibration``), or
**none** (the raw probability kept, where no map did better on held-out data):

- **temperature**: ``sigmoid(logit(p) / T)``, one ``T`` per attribute (Guo et al. 2017);
- **platt**: ``sigmoid(a * logit(p) + b)`` (Platt 1999);
- **isotonic**: the piecewise-linear interpolation of increasing knots ``(x, y)`` in ``p``,
  clipped at both ends (scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``).

:class:`Calibration` is what ``model.json`` stores beside the thresholds; :class:`CalibrationLayer`
is its one implementation, a torch module of elementwise operations that the prediction graph (and
so the ONNX export) and ``faceattr evaluate`` both run, so a model gives the same calibrated
probability everywhere. The map works on probabilities, whatever head produced them (sigmoid or
two-way softmax: both give one probability per attribute).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

Method = Literal["none", "temperature", "platt", "isotonic"]
METHODS: tuple[Method, ...] = get_args(Method)
"""Simplest first: a tie goes to the simpler map."""
EPSILON = 1e-6
"""Probabilities are clamped to ``[EPSILON, 1 - EPSILON]`` before their logit is taken."""


@dataclass(frozen=True)
class AttributeCalibration:
    """One attribute's map: ``sigmoid(scale * logit(p) + bias)``, or isotonic ``knots``."""

    method: Method
    scale: float = 1.0
    """``1 / T`` for temperature scaling, ``a`` for Platt scaling."""
    bias: float = 0.0
    knots: tuple[tuple[float, ...], tuple[float, ...]] = ((0.0, 1.0), (0.0, 1.0))
    """Isotonic: increasing ``x`` (raw probabilities) and non-decreasing ``y``."""

    @classmethod
    def temperature(cls, value: float) -> AttributeCalibration:
        """Temperature scaling by ``value`` (> 1 softens an over-confident model)."""
        if not value > 0:
            raise ValueError(f"a temperature must be positive, got {value}")
        return cls("temperature", scale=1.0 / value)

    def to_dict(self) -> dict[str, Any]:
        """model.json's entry: the method and only its own parameters."""
        if self.method == "temperature":
            return {"method": self.method, "temperature": 1.0 / self.scale}
        if self.method == "platt":
            return {"method": self.method, "a": self.scale, "b": self.bias}
        if self.method == "none":
            return {"method": self.method}
        return {"method": self.method, "x": list(self.knots[0]), "y": list(self.knots[1])}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributeCalibration:
        """Read :meth:`to_dict`'s output (``ValueError`` for an unknown method)."""
        method = data.get("method")
        if method == "none":
            return cls("none")
        if method == "temperature":
            return cls.temperature(float(data["temperature"]))
        if method == "platt":
            return cls("platt", scale=float(data["a"]), bias=float(data["b"]))
        if method == "isotonic":
            x, y = tuple(map(float, data["x"])), tuple(map(float, data["y"]))
            if len(x) != len(y) or len(x) < 2 or any(np.diff(x) < 0) or any(np.diff(y) < 0):
                raise ValueError("isotonic knots must be two equal, increasing lists (2 or more)")
            return cls("isotonic", knots=(x, y))
        raise ValueError(f"unknown calibration method {method!r}; known: {', '.join(METHODS)}")


@dataclass(frozen=True)
class Calibration:
    """Per-attribute calibration maps, in the model's attribute order, and what fitted them."""

    attributes: tuple[str, ...]
    maps: tuple[AttributeCalibration, ...]
    source: str
    """Where it was fitted, e.g. "val-A" (the validation split's protocol A)."""

    def __post_init__(self) -> None:
        if len(self.maps) != len(self.attributes):
            raise ValueError(
                f"{len(self.maps)} calibration maps for {len(self.attributes)} attributes"
            )

    @property
    def methods(self) -> tuple[str, ...]:
        """The method of each attribute."""
        return tuple(m.method for m in self.maps)

    def to_dict(self) -> dict[str, Any]:
        """model.json's ``calibration``: the source and one map per attribute, by name."""
        return {
            "source": self.source,
            "attributes": {
                name: m.to_dict() for name, m in zip(self.attributes, self.maps, strict=True)
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], attributes: Sequence[str]) -> Calibration:
        """Read :meth:`to_dict`'s output for a model of ``attributes`` (every one needs a map)."""
        maps = data["attributes"]
        missing = [name for name in attributes if name not in maps]
        if missing:
            raise ValueError(f"calibration lacks attributes {missing[:3]}")
        return cls(
            tuple(attributes),
            tuple(AttributeCalibration.from_dict(maps[name]) for name in attributes),
            str(data.get("source", "")),
        )

    def select(self, names: Sequence[str]) -> Calibration:
        """The maps of ``names`` (a subset of :attr:`attributes`), in that order."""
        if tuple(names) == self.attributes:
            return self
        return Calibration(
            tuple(names),
            tuple(self.maps[self.attributes.index(n)] for n in names),
            self.source,
        )

    def layer(self) -> CalibrationLayer:
        """The torch module applying these maps."""
        return CalibrationLayer(self.maps)

    def apply(self, probabilities: NDArray[np.floating]) -> NDArray[np.float32]:
        """Calibrated float32 probabilities of raw ones ``(..., K)``, through :meth:`layer`."""
        raw = torch.as_tensor(np.asarray(probabilities, dtype=np.float32))
        with torch.inference_mode():
            return self.layer()(raw).numpy()


class CalibrationLayer(nn.Module):
    """Raw probabilities ``(..., K)`` -> calibrated ones, by elementwise operations only.

    The isotonic interpolation is a sum of clipped ramps, one per knot interval (knot lists are
    padded with their last knot, an interval of width zero), so it exports to ONNX as it is.
    """

    scale: torch.Tensor
    bias: torch.Tensor
    isotonic: torch.Tensor
    identity: torch.Tensor
    starts: torch.Tensor
    widths: torch.Tensor
    slopes: torch.Tensor
    first: torch.Tensor

    def __init__(self, maps: Sequence[AttributeCalibration]) -> None:
        super().__init__()
        length = max(len(m.knots[0]) for m in maps)
        x = np.array([_pad(m.knots[0], length) for m in maps], dtype=np.float64)
        y = np.array([_pad(m.knots[1], length) for m in maps], dtype=np.float64)
        widths = np.diff(x, axis=1)
        rise = np.diff(y, axis=1)
        slopes = np.divide(rise, widths, out=np.zeros_like(rise), where=widths > 0)
        for name, values in (
            ("scale", [m.scale for m in maps]),
            ("bias", [m.bias for m in maps]),
            ("isotonic", [m.method == "isotonic" for m in maps]),
            ("identity", [m.method == "none" for m in maps]),
            ("starts", x[:, :-1]),
            ("widths", widths),
            ("slopes", slopes),
            ("first", y[:, 0]),
        ):
            dtype = torch.bool if name in ("isotonic", "identity") else torch.float32
            self.register_buffer(name, torch.tensor(np.asarray(values), dtype=dtype))

    def forward(self, probabilities: torch.Tensor) -> torch.Tensor:
        """Calibrated probabilities, the shape and dtype of ``probabilities``."""
        p = probabilities.float()
        logits = torch.logit(p.clamp(EPSILON, 1.0 - EPSILON))
        scaled = torch.sigmoid(logits * self.scale + self.bias)
        ramps = torch.minimum(torch.relu(p.unsqueeze(-1) - self.starts), self.widths)
        interpolated = self.first + (ramps * self.slopes).sum(-1)
        mapped = torch.where(self.isotonic, interpolated, scaled)
        return torch.where(self.identity, p, mapped).to(probabilities.dtype)


def _pad(values: Sequence[float], length: int) -> list[float]:
    return [*values, *[values[-1]] * (length - len(values))]

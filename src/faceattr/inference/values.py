"""One face's attributes as typed values, one class per kind of attribute.

- :class:`BinaryValue`: P(present), the model's threshold, the decision and whether it is unsure;
- :class:`NumericValue`: the expected value in the attribute's unit (``31.4 years``);
- :class:`CategoricalValue`: the most probable class, its probability and every class's.

``str(value)`` is how ``faceattr predict`` prints it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from faceattr.data.schema import Attribute, Schema


@dataclass(frozen=True)
class BinaryValue:
    """A yes/no attribute: ``present`` is ``probability > threshold`` (as ``faceattr evaluate``
    decides); ``unsure`` when the probability lies within the abstention band of the threshold."""

    probability: float
    threshold: float
    present: bool
    unsure: bool = False
    kind: Literal["binary"] = "binary"

    def __str__(self) -> str:
        verdict = "unsure" if self.unsure else "yes" if self.present else "no"
        return f"{verdict} ({self.probability:.3f})"

    def to_dict(self) -> dict[str, Any]:
        """``probability``, ``threshold``, ``present`` and ``unsure``, as JSON."""
        return {
            "probability": self.probability,
            "threshold": self.threshold,
            "present": self.present,
            "unsure": self.unsure,
        }


@dataclass(frozen=True)
class NumericValue:
    """A numeric attribute: the model's expected ``value`` in ``unit`` (empty: none)."""

    value: float
    unit: str = ""
    kind: Literal["numeric"] = "numeric"

    def __str__(self) -> str:
        return f"{self.value:.1f} {self.unit}".rstrip()

    def to_dict(self) -> dict[str, Any]:
        """``kind``, ``value`` and ``unit``, as JSON."""
        return {"kind": self.kind, "value": self.value, "unit": self.unit}


@dataclass(frozen=True)
class CategoricalValue:
    """A categorical attribute: the most probable class ``label``, its ``probability``, and
    ``probabilities`` of every class in the schema's class order."""

    label: str
    probability: float
    probabilities: dict[str, float]
    kind: Literal["categorical"] = "categorical"

    @classmethod
    def of(cls, attribute: Attribute, probabilities: Sequence[float]) -> CategoricalValue:
        """The value of ``attribute`` whose classes have ``probabilities`` (in class order)."""
        by_class = {c: float(p) for c, p in zip(attribute.classes, probabilities, strict=True)}
        label = max(by_class, key=by_class.__getitem__)  # the first of tied classes
        return cls(label, by_class[label], by_class)

    def __str__(self) -> str:
        return f"{self.label} ({self.probability:.3f})"

    def to_dict(self) -> dict[str, Any]:
        """``kind``, ``label``, its ``probability`` and every class's, as JSON."""
        return {
            "kind": self.kind,
            "label": self.label,
            "probability": self.probability,
            "probabilities": dict(self.probabilities),
        }


AttributeValue = BinaryValue | NumericValue | CategoricalValue
"""What a model says about one attribute of one face, by the attribute's kind."""


def attribute_values(
    schema: Schema,
    binary: Mapping[str, BinaryValue],
    numeric: Mapping[str, float],
    categorical: Mapping[str, Sequence[float]],
) -> dict[str, AttributeValue]:
    """``{name: value}`` in ``schema`` order from the binary values, the numeric estimates (in
    the attributes' units) and the categorical class probabilities, each by name."""
    values: dict[str, AttributeValue] = {}
    for attribute in schema.attributes:
        name = attribute.name
        if attribute.kind == "binary":
            values[name] = binary[name]
        elif attribute.kind == "numeric":
            values[name] = NumericValue(float(numeric[name]), attribute.unit)
        else:
            values[name] = CategoricalValue.of(attribute, categorical[name])
    return values

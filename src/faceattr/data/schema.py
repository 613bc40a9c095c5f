"""What a dataset labels: its attributes, each with a name and a kind.

A :class:`Schema` is the coordinate system of labels everywhere downstream (training columns,
evaluation tables, index columns, query names): code looks attributes up by name in the schema of
the data or model at hand, never in CelebA's list. CelebA's 40 binary attributes are one schema
among others (:data:`CELEBA_SCHEMA`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from faceattr.attributes import ATTRIBUTES

AttributeKind = Literal["binary", "categorical", "numeric"]
KINDS: tuple[str, ...] = get_args(AttributeKind)
NAME_PATTERN = re.compile(r"^(?![0-9]+$)[A-Za-z0-9_]{1,64}$")
"""An attribute name: letters, digits and underscores, not a number (``5_o_Clock_Shadow`` is a
name), 64 at most: a column name, a query word and a file-format token as it stands."""


class SchemaError(ValueError):
    """An attribute list that cannot be a schema (a bad or repeated name, an unknown kind)."""


@dataclass(frozen=True)
class Attribute:
    """One labelled attribute: ``binary`` (0/1) for now; ``categorical`` (named ``classes``) and
    ``numeric`` (``low``..``high`` in ``unit``) are declared for datasets that carry them."""

    name: str
    kind: AttributeKind = "binary"
    classes: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    unit: str = ""

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise SchemaError(
                f"attribute name {self.name!r} must be letters, digits and underscores "
                "(not a number, at most 64)"
            )
        if self.kind not in KINDS:
            raise SchemaError(f"{self.name}: unknown kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.kind == "categorical" and len(self.classes) < 2:
            raise SchemaError(f"{self.name}: a categorical attribute needs at least two classes")

    def declaration(self) -> str:
        """What the attribute is, in words: ``binary``, ``categorical (a, b)``,
        ``numeric 0..116 years``."""
        if self.kind == "categorical":
            return f"categorical ({', '.join(self.classes)})"
        if self.kind == "numeric":
            return f"numeric {self.low}..{self.high} {self.unit}".rstrip()
        return self.kind

    def to_json(self) -> dict[str, Any]:
        """The attribute as a JSON object (only the fields its kind uses)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "categorical":
            out["classes"] = list(self.classes)
        if self.kind == "numeric":
            out.update(low=self.low, high=self.high, unit=self.unit)
        return out

    @classmethod
    def from_json(cls, value: str | Mapping[str, Any]) -> Attribute:
        """An attribute from :meth:`to_json`'s object, or a bare name (binary)."""
        if isinstance(value, str):
            return cls(value)
        return cls(
            name=str(value["name"]),
            kind=value.get("kind", "binary"),
            classes=tuple(value.get("classes", ())),
            low=value.get("low"),
            high=value.get("high"),
            unit=str(value.get("unit", "")),
        )


@dataclass(frozen=True)
class Schema:
    """An ordered list of attributes with unique names; column ``k`` of a label matrix is
    ``attributes[k]``."""

    attributes: tuple[Attribute, ...]

    def __post_init__(self) -> None:
        names = [a.name for a in self.attributes]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise SchemaError(f"attribute {twice[0]!r} is named twice")

    @classmethod
    def binary(cls, names: Iterable[str]) -> Schema:
        """A schema of binary attributes named ``names``."""
        return cls(tuple(Attribute(n) for n in names))

    @classmethod
    def from_json(cls, values: Sequence[str | Mapping[str, Any]]) -> Schema:
        """A schema from a list of names (binary) or of :meth:`Attribute.to_json` objects."""
        return cls(tuple(Attribute.from_json(v) for v in values))

    def to_json(self) -> list[dict[str, Any]]:
        """The schema as a list of JSON objects."""
        return [a.to_json() for a in self.attributes]

    @property
    def names(self) -> tuple[str, ...]:
        """The attribute names, in column order."""
        return tuple(a.name for a in self.attributes)

    def __len__(self) -> int:
        return len(self.attributes)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __getitem__(self, name: str) -> Attribute:
        return self.attributes[self.index(name)]

    def index(self, name: str) -> int:
        """The column of ``name``; a ``KeyError`` names it and the known ones."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown attribute {name!r}; known: {', '.join(self.names)}") from None

    def columns(self, names: Iterable[str]) -> list[int]:
        """The columns of ``names`` (a ``KeyError`` names the first unknown one)."""
        return [self.index(n) for n in names]

    def select(self, names: Iterable[str]) -> Schema:
        """The sub-schema of ``names``, in that order."""
        return Schema(tuple(self[n] for n in names))


CELEBA_SCHEMA = Schema.binary(ATTRIBUTES)
"""CelebA's 40 binary attributes, in ``list_attr_celeba.txt`` order."""


def shared_names(
    model: Sequence[str], data: Sequence[str], aliases: Mapping[str, str] | None = None
) -> dict[str, str]:
    """``{model name: data name}`` for the attributes a model and a dataset share, in the model's
    order; ``aliases`` maps a dataset name to the model's name for renamed attributes."""
    renamed = {aliases.get(n, n) if aliases else n: n for n in data}
    return {name: renamed[name] for name in model if name in renamed}


def union_schema(schemas: Mapping[str, Schema]) -> Schema:
    """The attributes of several datasets (``{source name: its schema}``) aligned by name, in the
    order first seen: CelebA's ``Male`` and UTKFace's ``Male`` are one attribute. An attribute two
    sources declare differently (kind, classes, range or unit) is a :class:`SchemaError` naming
    both."""
    seen: dict[str, tuple[str, Attribute]] = {}
    for source, schema in schemas.items():
        for attribute in schema.attributes:
            first, declared = seen.setdefault(attribute.name, (source, attribute))
            if declared != attribute:
                raise SchemaError(
                    f"attribute {attribute.name!r}: {first} declares it "
                    f"{declared.declaration()}, {source} {attribute.declaration()}"
                )
    return Schema(tuple(attribute for _, attribute in seen.values()))

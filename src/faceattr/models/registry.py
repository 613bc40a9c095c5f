"""Model names -> factories: ``@register_model`` makes a name creatable with :func:`create_model`.

A factory takes ``attributes`` plus keyword arguments with defaults. :func:`create_model` binds
the caller's keyword arguments against the factory's signature, fills in the defaults and keeps
the result (JSON round-tripped) as ``model.model_args``, so ``create_model(model.model_name,
model.attributes, **model.model_args)`` rebuilds the same network, which is how checkpoints do it.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import inspect
import json
import logging
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pydantic

from faceattr.models.base import AttributeModel
from faceattr.models.outputs import Attributes
from faceattr.models.pretrained import load_backbone_weights
from faceattr.validation import one_line

ModelFactory = Callable[..., AttributeModel]
F = TypeVar("F", bound=ModelFactory)

_MODELS: dict[str, ModelFactory] = {}
log = logging.getLogger(__name__)


def register_model(name: str) -> Callable[[F], F]:
    """Decorator registering a factory ``f(attributes=..., **kwargs) -> AttributeModel``."""

    def decorate(factory: F) -> F:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        if "attributes" not in inspect.signature(factory).parameters:
            raise TypeError(f"factory of {name!r} must take an 'attributes' argument")
        _MODELS[name] = factory
        return factory

    return decorate


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names, sorted; ``pattern`` filters them shell-style (``"resnet*"``)."""
    names = sorted(_MODELS)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def model_entrypoint(name: str) -> ModelFactory:
    """The factory registered as ``name``; ``KeyError`` suggesting close names otherwise."""
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown model {name!r}.{hint} Known: {', '.join(list_models())}")
    return _MODELS[name]


def default_attributes(name: str) -> tuple[str, ...]:
    """The attribute names model ``name`` is built for when given none."""
    default = inspect.signature(model_entrypoint(name)).parameters["attributes"].default
    if default is inspect.Parameter.empty:
        raise TypeError(f"model {name!r} has no default attributes")
    return tuple(default)


TEST_TIME_MIRROR = "test_time_mirror"
"""The model argument every registered model accepts: see :func:`create_model`."""


@functools.cache
def arguments_schema(name: str) -> type[pydantic.BaseModel]:
    """A pydantic model of the arguments of model ``name`` but ``attributes``: the types and
    bounds its factory's annotations declare (``InputSize``, ``Width``, ...), nothing else."""
    factory = model_entrypoint(name)
    hints = typing.get_type_hints(factory, include_extras=True)
    fields: dict[str, Any] = {
        p.name: (hints.get(p.name, Any), ... if p.default is p.empty else p.default)
        for p in inspect.signature(factory).parameters.values()
        if p.name != "attributes"
    }
    config = pydantic.ConfigDict(extra="forbid", strict=True)
    return pydantic.create_model(f"{name} arguments", __config__=config, **fields)


def resolve_model_args(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """All arguments of model ``name`` but ``attributes``: ``kwargs`` over the factory's defaults,
    JSON round-tripped (tuples become lists), as a checkpoint stores them. ``ValueError`` when
    one breaks the factory's annotated type or bounds (checked before anything is built)."""
    signature = inspect.signature(model_entrypoint(name))
    accepted = [p for p in signature.parameters if p != "attributes"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise TypeError(
            f"model {name!r} got unknown arguments {unknown}; it accepts: {', '.join(accepted)}"
        )
    bound = signature.bind_partial(**kwargs)
    bound.apply_defaults()
    args = {k: v for k, v in bound.arguments.items() if k != "attributes"}
    missing = [k for k in accepted if k not in args]
    if missing:
        raise TypeError(f"model {name!r} needs arguments {missing}")
    for key, value in args.items():
        try:
            json.dumps(value)
        except TypeError as error:
            raise TypeError(f"argument {key!r} of model {name!r} is not JSON: {error}") from None
    text = json.dumps(args)
    try:
        arguments_schema(name).model_validate_json(text, strict=True)
    except pydantic.ValidationError as error:
        raise ValueError(f"model {name!r}: bad arguments: {one_line(error)}") from None
    resolved: dict[str, Any] = json.loads(text)
    return resolved


def check_model_args(name: str, kwargs: dict[str, Any]) -> None:
    """Raise as :func:`create_model` would for ``kwargs`` (``TypeError`` for unknown or missing
    arguments, ``ValueError`` for bad values), without building anything."""
    args = dict(kwargs)
    if not isinstance(args.pop(TEST_TIME_MIRROR, False), bool):
        raise ValueError(f"model {name!r}: {TEST_TIME_MIRROR} must be true or false")
    resolve_model_args(name, args)


def create_model(
    name: str,
    attributes: Attributes | None = None,
    pretrained: str | Path | None = None,
    **kwargs: Any,
) -> AttributeModel:
    """Build model ``name`` for ``attributes`` (default: the model's own, usually all 40):
    names of binary attributes, or a :class:`~faceattr.data.schema.Schema` with other kinds.

    ``pretrained`` is a LOCAL weights file for the backbone (``.pth``/``.pt``/``.safetensors``)
    or the name of an installed one (see :data:`faceattr.models.pretrained.INSTALLED_WEIGHTS`);
    nothing is ever downloaded. ``test_time_mirror=True``, accepted by every model, averages
    its eval-mode outputs over each image and its mirror (kept in ``model_args``).
    """
    factory = model_entrypoint(name)
    mirror = bool(kwargs.pop(TEST_TIME_MIRROR, False))
    args = resolve_model_args(name, kwargs)
    model = factory(**args) if attributes is None else factory(attributes=attributes, **args)
    model.model_name = name
    model.model_args = {**args, TEST_TIME_MIRROR: True} if mirror else args
    model.test_time_mirror = mirror
    if pretrained is not None:
        report = load_backbone_weights(model, pretrained)
        log.info(
            "%s: loaded %d backbone tensors from %s (dropped %d classifier tensors)",
            name,
            report.loaded,
            report.path,
            len(report.dropped),
        )
    return model

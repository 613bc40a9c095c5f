"""Self-describing, safe checkpoints: ``model.safetensors`` + ``model.json`` rebuild a model alone.

``model.json`` holds what nanoGPT keeps beside its weights: the registry name and arguments of the
model, its attributes, its preprocessing and head type, plus the training config, metrics and a
place for decision thresholds. :func:`load_checkpoint` rebuilds the network through the registry
and loads the tensors; nothing in either file can execute code. A Lightning ``.ckpt`` (or any
``.pt``) is read with ``torch.load(weights_only=True)``: one carrying a pickled Python object is
refused. Every file is written to a temporary name, synced and renamed, so a process killed while
saving leaves the previous file intact.

Reading is one path for every command: the description is validated against
:class:`ModelFileSchema` (types, a registered model, its known arguments within their declared
bounds, thresholds in [0, 1]) before anything is allocated, and every way a file can be wrong
(not JSON, truncated or foreign weights, weights that do not fit) is one
:class:`ModelFileError`: one line naming the file and what is wrong with it.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import torch
from pydantic import Field, JsonValue
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from faceattr.data.schema import Schema
from faceattr.models import AttributeModel, HeadType, InputConfig, create_model, list_models
from faceattr.models.base import IMAGENET_MEAN, IMAGENET_STD, Fraction, InputSize, Normalization
from faceattr.models.calibration import Calibration
from faceattr.models.registry import check_model_args
from faceattr.shipped import model_path
from faceattr.training.atomic import atomic_write
from faceattr.validation import one_line

FORMAT = "faceattr-model"
VERSION = 1
WEIGHTS_FILE = "model.safetensors"
DESCRIPTION_FILE = "model.json"
DESCRIPTION_KEY = "faceattr_model"
"""Where a Lightning checkpoint keeps the model's description (see ``ExportModel``)."""
MODEL_PREFIX = "model."
"""Prefix of the model's tensors in a Lightning checkpoint's ``state_dict``."""


MAX_ATTRIBUTES = 1000
"""Most attributes a model file may declare."""
PICKLE_MAGIC = (b"PK\x03\x04", b"\x80")
"""How files of ``torch.save`` (a zip) and of ``pickle`` begin."""


class ModelFileError(ValueError):
    """A model file that cannot be loaded; the message names the file and what is wrong."""


class UnsafeCheckpointError(ModelFileError):
    """A checkpoint holds a pickled Python object, which loading would have to execute."""


class InputConfigSchema(pydantic.BaseModel):
    """``input_config`` of ``model.json`` (see :class:`~faceattr.models.InputConfig`)."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    size: InputSize
    channels: Literal[1, 3] = 3
    mean: Normalization = IMAGENET_MEAN
    std: Normalization = IMAGENET_STD
    grayscale: bool = False


class ModelFileSchema(pydantic.BaseModel):
    """What a ``model.json`` may hold: checked before anything is built from it."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    format: Literal["faceattr-model"]
    version: Literal[1]
    model_name: str
    model_args: dict[str, JsonValue]
    attributes: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=100)]],
        Field(min_length=1, max_length=MAX_ATTRIBUTES),
    ]
    attribute_schema: (
        Annotated[list[dict[str, JsonValue]], Field(min_length=1, max_length=MAX_ATTRIBUTES)] | None
    ) = Field(default=None, alias="schema")
    """``schema`` in the file: the attributes with their kinds (absent: all binary)."""
    input_config: InputConfigSchema
    head_type: HeadType
    thresholds: list[Fraction] | None = None
    thresholds_source: str | None = None
    calibration: dict[str, JsonValue] | None = None
    metrics: dict[str, float] = {}
    config: dict[str, JsonValue] = {}
    epoch: Annotated[int, Field(ge=0)] | None = None

    @pydantic.field_validator("model_name")
    @classmethod
    def registered(cls, name: str) -> str:
        """A name of the model registry."""
        if name not in list_models():
            raise ValueError(f"unknown model {name!r} (known: {', '.join(list_models())})")
        return name

    @pydantic.model_validator(mode="after")
    def consistent(self) -> ModelFileSchema:
        """Arguments the model accepts, within their bounds; one threshold per attribute."""
        if len(set(self.attributes)) != len(self.attributes):
            raise ValueError("attributes: a name is repeated")
        if self.attribute_schema is not None:
            try:
                names = Schema.from_json(self.attribute_schema).names
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(f"schema: {error}") from None
            if list(names) != self.attributes:
                raise ValueError("schema: its names are not the attributes, in order")
        if self.thresholds is not None and len(self.thresholds) != len(self.attributes):
            raise ValueError(
                f"thresholds: {len(self.thresholds)} for {len(self.attributes)} attributes"
            )
        try:
            check_model_args(self.model_name, dict(self.model_args))
        except TypeError as error:
            raise ValueError(f"model_args: {error}") from None
        return self


@dataclass(frozen=True)
class ModelDescription:
    """What ``model.json`` says: enough to rebuild the model, and how it was trained."""

    model_name: str
    model_args: dict[str, Any]
    attributes: tuple[str, ...]
    input_config: InputConfig
    head_type: str
    thresholds: list[float] | None = None
    """Per-attribute decision thresholds, once tuned (None: 0.5); on the calibrated scale when
    there is a ``calibration``."""
    calibration: Calibration | None = None
    """Per-attribute probability calibration (``faceattr evaluate``), applied by every consumer."""
    metrics: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    epoch: int | None = None
    schema: Schema | None = None
    """The attributes with their kinds; None (or a file without one): all binary."""

    def __post_init__(self) -> None:
        schema = self.schema if self.schema is not None else Schema.binary(self.attributes)
        if schema.names != tuple(self.attributes):
            raise ValueError(f"schema {schema.names} does not name attributes {self.attributes}")
        object.__setattr__(self, "schema", schema)

    @property
    def attribute_schema(self) -> Schema:
        """The attribute schema (kinds, classes, ranges), all binary for an old model.json."""
        assert self.schema is not None  # set by __post_init__
        return self.schema

    @classmethod
    def of(
        cls,
        model: AttributeModel,
        config: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
        epoch: int | None = None,
    ) -> ModelDescription:
        """The description of ``model`` (built by ``create_model``, so it knows its name)."""
        if not model.model_name:
            raise ValueError("the model has no registry name: build it with create_model()")
        return cls(
            model_name=model.model_name,
            model_args=dict(model.model_args),
            attributes=tuple(model.attributes),
            input_config=model.input_config,
            head_type=model.head_type,
            schema=model.schema,
            metrics=dict(metrics or {}),
            config=dict(config or {}),
            epoch=epoch,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, tagged with the format and its version; ``schema`` only when an
        attribute is not binary, so a binary model's file is what faceattr always wrote (and
        what older versions, which refuse unknown keys, read)."""
        binary = all(a.kind == "binary" for a in self.attribute_schema.attributes)
        return {
            **({} if binary else {"schema": self.attribute_schema.to_json()}),
            "format": FORMAT,
            "version": VERSION,
            "model_name": self.model_name,
            "model_args": self.model_args,
            "attributes": list(self.attributes),
            "input_config": self.input_config.to_dict(),
            "head_type": self.head_type,
            "thresholds": self.thresholds,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "metrics": self.metrics,
            "config": self.config,
            "epoch": self.epoch,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str) -> ModelDescription:
        """Read :meth:`to_dict`'s output; :class:`ModelFileError` naming ``source`` when it is
        not one, or breaks :class:`ModelFileSchema`."""
        if not isinstance(data, dict):
            kind = "list" if isinstance(data, list) else type(data).__name__
            raise ModelFileError(f"{source}: not a {FORMAT} description (a JSON {kind})")
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ModelFileError(f"{source}: not a {FORMAT} version {VERSION} description")
        try:
            checked = ModelFileSchema.model_validate(data)
        except pydantic.ValidationError as error:
            raise ModelFileError(f"{source}: {one_line(error)}") from None
        attributes = tuple(checked.attributes)
        try:
            calibration = (
                None
                if checked.calibration is None
                else Calibration.from_dict(checked.calibration, attributes)
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"{source}: bad calibration ({error!r})") from None
        return cls(
            model_name=checked.model_name,
            model_args=dict(checked.model_args),
            attributes=attributes,
            input_config=InputConfig.from_dict(checked.input_config.model_dump()),
            head_type=checked.head_type,
            schema=(
                None
                if checked.attribute_schema is None
                else Schema.from_json(checked.attribute_schema)
            ),
            thresholds=checked.thresholds,
            calibration=calibration,
            metrics=dict(checked.metrics),
            config=dict(checked.config),
            epoch=checked.epoch,
        )

    def build(self) -> AttributeModel:
        """A freshly initialised model of this description (through the registry)."""
        return create_model(self.model_name, self.attribute_schema, **self.model_args)


def write_weights(
    tensors: dict[str, torch.Tensor], directory: str | Path, dtype: torch.dtype | None = None
) -> Path:
    """Write ``directory/model.safetensors``; ``dtype`` (e.g. ``torch.float16``) stores the
    floating tensors in fewer bytes. Loading casts them back to the model's own float32."""
    path = Path(directory) / WEIGHTS_FILE
    stored = {
        k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v)
        .detach()
        .cpu()
        .contiguous()
        for k, v in tensors.items()
    }
    data = save(stored, metadata={"format": "pt"})
    atomic_write(path, lambda file: file.write(data))
    return path


def export_model(
    model: AttributeModel,
    directory: str | Path,
    config: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    epoch: int | None = None,
) -> Path:
    """Write ``model.safetensors`` and ``model.json`` into ``directory`` (weights first)."""
    directory = Path(directory)
    description = ModelDescription.of(model, config, metrics, epoch)
    write_weights(model.state_dict(), directory)
    text = json.dumps(description.to_dict(), indent=2, sort_keys=True) + "\n"
    atomic_write(directory / DESCRIPTION_FILE, lambda file: file.write(text.encode()))
    return directory


def save_thresholds(
    directory: str | Path,
    thresholds: Sequence[float],
    source: str,
    calibration: Calibration | None,
) -> Path:
    """Store per-attribute decision ``thresholds`` (one per attribute, in order) in the
    ``model.json`` of the export folder ``directory``, with where they came from (``source``,
    e.g. "val-f1", kept as ``thresholds_source``), and the ``calibration`` they apply to (None
    removes a stored one): the two are always written together. The weights are untouched."""
    path = Path(directory) / DESCRIPTION_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {DESCRIPTION_FILE} in {directory}")
    data = read_json(path)
    description = ModelDescription.from_dict(data, str(path))
    values = [float(t) for t in thresholds]
    if len(values) != len(description.attributes):
        raise ValueError(
            f"{path}: {len(values)} thresholds for {len(description.attributes)} attributes"
        )
    stored = None if calibration is None else calibration.to_dict()
    data.update(thresholds=values, thresholds_source=source, calibration=stored)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda file: file.write(text.encode()))
    return path


def read_json(path: Path) -> Any:
    """The JSON document in ``path``; :class:`ModelFileError` naming it when it is not one."""
    try:
        return json.loads(path.read_bytes())
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path}:{error.lineno}: not JSON ({error.msg})") from None
    except UnicodeDecodeError:
        raise ModelFileError(f"{path}: not JSON (not UTF-8 text)") from None


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of the safetensors file ``path``; :class:`ModelFileError` naming it when it is
    empty, truncated, or something else (a pickle is never loaded)."""
    try:
        return load_file(str(path))
    except SafetensorError as error:
        with path.open("rb") as file:
            head = file.read(4)
        if not head:
            raise ModelFileError(f"{path}: empty file (0 bytes), not safetensors weights") from None
        if head.startswith(PICKLE_MAGIC):
            raise UnsafeCheckpointError(
                f"refusing {path}: a pickle (torch.save) file, not safetensors weights"
            ) from None
        raise ModelFileError(f"{path}: truncated or not safetensors weights ({error})") from None


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a pickled object raises
    :class:`UnsafeCheckpointError`, an unreadable or truncated file :class:`ModelFileError`,
    naming the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()[0]
        if "Weights only load failed" not in reason:
            raise ModelFileError(f"{path}: not a whole PyTorch checkpoint ({reason})") from None
        raise UnsafeCheckpointError(
            f"refusing {path}: it holds a pickled Python object that loading would execute; "
            f"only tensors and plain containers are accepted ({reason})"
        ) from None
    except (EOFError, RuntimeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "it ends early"
        raise ModelFileError(f"{path}: not a whole PyTorch checkpoint ({reason})") from None


def load_description(path: str | Path) -> ModelDescription:
    """The :class:`ModelDescription` of a checkpoint (see :func:`load_checkpoint` for ``path``)."""
    return _read(Path(path))[0]


def load_checkpoint(path: str | Path) -> AttributeModel:
    """Rebuild a trained model, in eval mode on the CPU, from ``path``: an export folder, its
    ``model.json`` or ``model.safetensors``, or a Lightning ``.ckpt`` written by ``faceattr train``.
    """
    description, state = _read(Path(path))
    try:
        model = description.build()
    except (KeyError, RuntimeError, TypeError, ValueError) as error:
        reason = error.args[0] if isinstance(error, KeyError) else error
        raise ModelFileError(f"{path}: cannot build {description.model_name}: {reason}") from None
    load_weights(model, state, path)
    return model.eval()


def load_weights(model: AttributeModel, state: dict[str, torch.Tensor], source: str | Path) -> None:
    """Copy ``state`` into ``model``, every tensor and nothing else; :class:`ModelFileError`
    naming ``source`` and the first misfit when they do not fit."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        misfit = next((line for line in lines if line.startswith("size mismatch")), lines[0])
        raise ModelFileError(
            f"{source}: weights do not fit {model.model_name} ({misfit.rstrip('.')})"
        ) from None
    if missing or unexpected:
        raise ModelFileError(
            f"{source}: weights do not fit {model.model_name} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


BACKBONE_PREFIX = "backbone."
"""The prefix of a model's backbone weights (``AttributeModel.backbone``)."""


Start = tuple[Path, AttributeModel]


def read_start(path: str | Path) -> Start:
    """The trained model at ``path`` (an export folder, a run folder's ``best/``, a ``.ckpt``, or
    ``"shipped"``: the package's model), rebuilt and checked, for :func:`init_from`."""
    resolved = model_path(None if str(path) == "shipped" else path)
    return resolved, load_checkpoint(resolved)


def init_from(model: AttributeModel, start: str | Path | Start) -> str:
    """Copy into ``model`` the weights of a trained model (a path as :func:`read_start` takes,
    or what it returned): the start of a fine-tuning. It must be the same registered network;
    for the same attributes every weight is copied, for others the backbone only (the head stays
    freshly initialised). ``input_size`` may differ where the weights do not depend on it.
    Returns which weights were copied, in words.
    """
    path, trained = start if isinstance(start, tuple) else read_start(start)
    if trained.model_name != model.model_name:
        raise ModelFileError(f"{path}: a {trained.model_name} cannot start a {model.model_name}")
    state = trained.state_dict()
    if trained.schema == model.schema:
        load_weights(model, state, path)
        return "every weight"
    backbone = {k: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
    head = {k: v for k, v in model.state_dict().items() if not k.startswith(BACKBONE_PREFIX)}
    load_weights(model, {**backbone, **head}, path)
    return (
        f"the backbone ({len(backbone)} tensors; a new head for {len(model.attributes)} "
        f"attributes, not the {len(trained.attributes)} it learnt)"
    )


def _read(path: Path) -> tuple[ModelDescription, dict[str, torch.Tensor]]:
    if path.suffix in (".ckpt", ".pt", ".pth"):
        return _read_lightning(path)
    folder = path if path.is_dir() else path.parent
    json_path, weights_path = folder / DESCRIPTION_FILE, folder / WEIGHTS_FILE
    for needed in (json_path, weights_path):
        if not needed.is_file():
            raise FileNotFoundError(f"no {needed.name} in {folder}")
    description = ModelDescription.from_dict(read_json(json_path), str(json_path))
    return description, read_weights(weights_path)


def _read_lightning(path: Path) -> tuple[ModelDescription, dict[str, torch.Tensor]]:
    checkpoint = safe_torch_load(path)
    if not isinstance(checkpoint, dict) or DESCRIPTION_KEY not in checkpoint:
        raise ModelFileError(
            f"{path}: not a checkpoint written by faceattr train (no model description)"
        )
    description = ModelDescription.from_dict(checkpoint[DESCRIPTION_KEY], str(path))
    weights = checkpoint.get("state_dict")
    if not isinstance(weights, dict):
        raise ModelFileError(f"{path}: no state_dict of tensors")
    state = {
        k.removeprefix(MODEL_PREFIX): v for k, v in weights.items() if k.startswith(MODEL_PREFIX)
    }
    return description, state

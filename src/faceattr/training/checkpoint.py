"""Self-describing, safe checkpoints: ``model.safetensors`` + ``model.json`` rebuild a model alone.

``model.json`` holds what nanoGPT keeps beside its weights: the registry name and arguments of the
model, its attributes, its preprocessing and head type, plus the training config, metrics and a
place for decision thresholds. :func:`load_checkpoint` rebuilds the network through the registry
and loads the tensors; nothing in either file can execute code. A Lightning ``.ckpt`` (or any
``.pt``) is read with ``torch.load(weights_only=True)``: one carrying a pickled Python object is
refused. Every file is written to a temporary name, synced and renamed, so a process killed while
saving leaves the previous file intact.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from faceattr.inference.shipped import model_path
from faceattr.models import AttributeModel, InputConfig, create_model
from faceattr.models.calibration import Calibration
from faceattr.training.atomic import atomic_write

FORMAT = "faceattr-model"
VERSION = 1
WEIGHTS_FILE = "model.safetensors"
DESCRIPTION_FILE = "model.json"
DESCRIPTION_KEY = "faceattr_model"
"""Where a Lightning checkpoint keeps the model's description (see ``ExportModel``)."""
MODEL_PREFIX = "model."
"""Prefix of the model's tensors in a Lightning checkpoint's ``state_dict``."""


class UnsafeCheckpointError(ValueError):
    """A checkpoint holds a pickled Python object, which loading would have to execute."""


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
            metrics=dict(metrics or {}),
            config=dict(config or {}),
            epoch=epoch,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, tagged with the format and its version."""
        return {
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
    def from_dict(cls, data: dict[str, Any], source: str) -> ModelDescription:
        """Read :meth:`to_dict`'s output; ``ValueError`` naming ``source`` when it is not one."""
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"{source}: not a {FORMAT} version {VERSION} description")
        try:
            attributes = tuple(data["attributes"])
            calibration = data.get("calibration")
            return cls(
                model_name=str(data["model_name"]),
                model_args=dict(data["model_args"]),
                attributes=attributes,
                input_config=InputConfig.from_dict(data["input_config"]),
                head_type=str(data["head_type"]),
                thresholds=data.get("thresholds"),
                calibration=None
                if calibration is None
                else Calibration.from_dict(calibration, attributes),
                metrics=dict(data.get("metrics") or {}),
                config=dict(data.get("config") or {}),
                epoch=data.get("epoch"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{source}: bad model description ({error!r})") from None

    def build(self) -> AttributeModel:
        """A freshly initialised model of this description (through the registry)."""
        return create_model(self.model_name, self.attributes, **self.model_args)


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
    data = json.loads(path.read_text())
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


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a pickled object raises
    :class:`UnsafeCheckpointError` naming the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()[0]
        raise UnsafeCheckpointError(
            f"refusing {path}: it holds a pickled Python object that loading would execute; "
            f"only tensors and plain containers are accepted ({reason})"
        ) from None


def load_description(path: str | Path) -> ModelDescription:
    """The :class:`ModelDescription` of a checkpoint (see :func:`load_checkpoint` for ``path``)."""
    return _read(Path(path))[0]


def load_checkpoint(path: str | Path) -> AttributeModel:
    """Rebuild a trained model, in eval mode on the CPU, from ``path``: an export folder, its
    ``model.json`` or ``model.safetensors``, or a Lightning ``.ckpt`` written by ``faceattr train``.
    """
    description, state = _read(Path(path))
    model = description.build()
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{path}: weights do not fit {description.model_name} "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.eval()


def init_from(model: AttributeModel, path: str | Path) -> None:
    """Copy into ``model`` every weight of the trained model at ``path`` (an export folder, a run
    folder's ``best/``, a ``.ckpt``, or ``"shipped"``: the package's model): the start of a
    fine-tuning. It must be the same registered network for the same attributes; ``input_size``
    may differ where the weights do not depend on it.
    """
    path = model_path(None if str(path) == "shipped" else path)
    description, state = _read(path)
    if (description.model_name, description.attributes) != (model.model_name, model.attributes):
        raise ValueError(
            f"{path}: a {description.model_name} for {len(description.attributes)} attributes "
            f"cannot start a {model.model_name} for {len(model.attributes)}"
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{path}: weights do not fit {model.model_name} ({error})") from None


def _read(path: Path) -> tuple[ModelDescription, dict[str, torch.Tensor]]:
    if path.suffix in (".ckpt", ".pt", ".pth"):
        return _read_lightning(path)
    folder = path if path.is_dir() else path.parent
    json_path, weights_path = folder / DESCRIPTION_FILE, folder / WEIGHTS_FILE
    for needed in (json_path, weights_path):
        if not needed.is_file():
            raise FileNotFoundError(f"no {needed.name} in {folder}")
    try:
        data = json.loads(json_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{json_path}:{error.lineno}: not JSON ({error.msg})") from None
    return ModelDescription.from_dict(data, str(json_path)), load_file(str(weights_path))


def _read_lightning(path: Path) -> tuple[ModelDescription, dict[str, torch.Tensor]]:
    checkpoint = safe_torch_load(path)
    if not isinstance(checkpoint, dict) or DESCRIPTION_KEY not in checkpoint:
        raise ValueError(
            f"{path}: not a checkpoint written by faceattr train (no model description)"
        )
    description = ModelDescription.from_dict(checkpoint[DESCRIPTION_KEY], str(path))
    state = {
        k.removeprefix(MODEL_PREFIX): v
        for k, v in checkpoint.get("state_dict", {}).items()
        if k.startswith(MODEL_PREFIX)
    }
    return description, state

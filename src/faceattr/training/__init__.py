"""Training: typed configuration, the Lightning trainer, self-describing checkpoints.

config = load_config("configs/facenet_mtl.yaml", ["data.root=../shared/celeba"])
result = train(config)                    # runs/<timestamp>-<name>/
model = load_checkpoint(result.best)      # rebuilt from model.json + model.safetensors

The names are imported on first use (PEP 562), so that commands which only read configs or
checkpoints (predict, serve, --help) do not pay for importing Lightning.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faceattr.training.checkpoint import (
        ModelDescription,
        UnsafeCheckpointError,
        export_model,
        load_checkpoint,
        load_description,
    )
    from faceattr.training.config import ConfigError, TrainConfig, load_config, save_config
    from faceattr.training.trainer import RunResult, SplitMetrics, evaluate, train

_MODULES = {
    "checkpoint": (
        "ModelDescription",
        "UnsafeCheckpointError",
        "export_model",
        "load_checkpoint",
        "load_description",
    ),
    "config": ("ConfigError", "TrainConfig", "load_config", "save_config"),
    "trainer": ("RunResult", "SplitMetrics", "evaluate", "train"),
}
_SOURCE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "ConfigError",
    "ModelDescription",
    "RunResult",
    "SplitMetrics",
    "TrainConfig",
    "UnsafeCheckpointError",
    "evaluate",
    "export_model",
    "load_checkpoint",
    "load_config",
    "load_description",
    "save_config",
    "train",
]


def __getattr__(name: str) -> Any:
    """Import ``name`` from its module on first use."""
    module = _SOURCE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)

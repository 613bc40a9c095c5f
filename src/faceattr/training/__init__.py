"""Training: typed configuration, the Lightning trainer, self-describing checkpoints.

config = load_config("configs/facenet_mtl.yaml", ["data.root=../shared/celeba"])
result = train(config)                    # runs/<timestamp>-<name>/
model = load_checkpoint(result.best)      # rebuilt from model.json + model.safetensors
"""

from faceattr.training.checkpoint import (
    ModelDescription,
    UnsafeCheckpointError,
    export_model,
    load_checkpoint,
    load_description,
)
from faceattr.training.config import ConfigError, TrainConfig, load_config, save_config
from faceattr.training.trainer import RunResult, SplitMetrics, evaluate, train

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

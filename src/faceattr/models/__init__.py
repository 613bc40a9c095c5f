"""Every seed network behind one registry: ``create_model(name, attributes, **kwargs)``.

Importing this package registers the families: ``facenet_mtl`` (seed 000), ``scratch_cnn``
(seed 001) and ``backbones`` (timm/torchvision backbones with the heads of seeds 001-004).
"""

from faceattr.models import backbones, facenet_mtl, scratch_cnn  # noqa: F401  (registration)
from faceattr.models.base import (
    CPU_BATCH,
    HEAD_TYPES,
    AttributeModel,
    HeadType,
    InputConfig,
    binary_logits,
    cpu_batches,
    logits_to_probabilities,
)
from faceattr.models.finetune import param_groups, set_backbone_trainable
from faceattr.models.outputs import (
    Attributes,
    OutputLayout,
    as_schema,
    numeric_bins,
    output_width,
)
from faceattr.models.parameter_count import ParameterCount, count_parameters
from faceattr.models.pretrained import (
    INSTALLED_WEIGHTS,
    PretrainedLoad,
    PretrainedMismatchError,
    installed_weights_path,
    load_backbone_weights,
)
from faceattr.models.registry import create_model, list_models, register_model

__all__ = [
    "CPU_BATCH",
    "HEAD_TYPES",
    "INSTALLED_WEIGHTS",
    "AttributeModel",
    "Attributes",
    "OutputLayout",
    "as_schema",
    "numeric_bins",
    "output_width",
    "HeadType",
    "InputConfig",
    "ParameterCount",
    "PretrainedLoad",
    "PretrainedMismatchError",
    "binary_logits",
    "count_parameters",
    "cpu_batches",
    "create_model",
    "installed_weights_path",
    "list_models",
    "load_backbone_weights",
    "logits_to_probabilities",
    "param_groups",
    "register_model",
    "set_backbone_trainable",
]

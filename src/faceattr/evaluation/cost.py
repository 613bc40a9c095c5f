"""What a model costs: parameters and FLOPs of one forward pass at its input size.

FLOPs are counted by PyTorch's ``torch.utils.flop_counter.FlopCounterMode`` on one image: matrix
multiplications and convolutions only, each multiply-add counted as 2 FLOPs (FLOPs = 2 x MACs);
biases, normalisation, activations and pooling are not counted. Seed 000 quotes "flop" figures
under another convention; compare models with each other under this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from faceattr.models import AttributeModel
from faceattr.models.parameter_count import count_parameters


@dataclass(frozen=True)
class ModelCost:
    """Parameters (PyTorch's count and Keras') and FLOPs per image at ``input_size``."""

    parameters: int
    flops: int
    input_size: tuple[int, int]
    """(height, width) the FLOPs were counted at."""
    keras_parameters: int
    """Parameters plus BatchNorm moving statistics, as Keras (and seed 000) counts them."""

    def to_dict(self) -> dict[str, Any]:
        """``{"parameters", "flops", "input_size": [h, w], "keras_parameters"}``."""
        return {
            "parameters": self.parameters,
            "flops": self.flops,
            "input_size": list(self.input_size),
            "keras_parameters": self.keras_parameters,
        }


def model_cost(model: AttributeModel) -> ModelCost:
    """Count ``model``'s parameters and the FLOPs of one image at its ``input_config.size``
    (in eval mode, on the model's device; its training mode is restored)."""
    config = model.input_config
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    image = torch.zeros(1, config.channels, *config.size, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(image)
    finally:
        model.train(was_training)
    counts = count_parameters(model)
    return ModelCost(
        parameters=counts.total,
        flops=int(counter.get_total_flops()),
        input_size=config.size,
        keras_parameters=counts.keras_total,
    )

"""Parameter counts, both the PyTorch way and the Keras way (which the seeds report)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ParameterCount:
    """``trainable`` and ``frozen`` parameters, and BatchNorm ``running_stats`` (moving mean and
    variance), which PyTorch keeps as buffers but Keras counts as non-trainable parameters."""

    trainable: int
    frozen: int
    running_stats: int

    @property
    def total(self) -> int:
        """All parameters, as PyTorch counts them."""
        return self.trainable + self.frozen

    @property
    def keras_total(self) -> int:
        """Keras' "Total params": parameters plus BatchNorm moving statistics."""
        return self.total + self.running_stats

    @property
    def keras_non_trainable(self) -> int:
        """Keras' "Non-trainable params": frozen parameters plus BatchNorm moving statistics."""
        return self.frozen + self.running_stats


def count_parameters(model: nn.Module) -> ParameterCount:
    """Count ``model``'s parameters and BatchNorm running statistics."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    stats = sum(
        buffer.numel()
        for name, buffer in model.named_buffers()
        if name.endswith(("running_mean", "running_var"))
    )
    return ParameterCount(trainable=trainable, frozen=frozen, running_stats=stats)

"""The seeds' classification heads over a pooled embedding ``(N, D)`` -> logits ``(N, K)``.

:data:`HEADS` maps a name to a builder ``(in_features, num_outputs, **options) -> nn.Module``:

- ``linear``: AFFACT's ResNet-51-S, a single linear K-way layer (seed 003); with ``dropout`` it is
  seed 001's transfer head (global pooling, dropout, dense K with sigmoid).
- ``affact-ext``: AFFACT-Ext, an extra fully connected layer of 40 + leaky ReLU (seed 003 §7.4).
- ``mlp``: dropout, dense ``hidden`` + ReLU, one output per attribute: seed 002 (dropout 0.2,
  dense 128) and seed 004 (dropout + a ``num_features`` = 512 layer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

HeadBuilder = Callable[..., nn.Module]


def linear_head(in_features: int, num_outputs: int, dropout: float = 0.0) -> nn.Module:
    """``[Dropout] -> Linear(D, K)``."""
    layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout > 0 else []
    return nn.Sequential(*layers, nn.Linear(in_features, num_outputs))


def affact_ext_head(
    in_features: int, num_outputs: int, hidden: int = 40, negative_slope: float = 0.01
) -> nn.Module:
    """``Linear(D, 40) -> LeakyReLU -> Linear(40, K)``."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.LeakyReLU(negative_slope),
        nn.Linear(hidden, num_outputs),
    )


def mlp_head(
    in_features: int, num_outputs: int, hidden: int = 128, dropout: float = 0.2
) -> nn.Module:
    """``Dropout -> Linear(D, hidden) -> ReLU -> Linear(hidden, K)``; the last layer is the seeds'
    K separate one-unit dense outputs in one matrix (same parameters, same function)."""
    return nn.Sequential(
        nn.Dropout(dropout),
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_outputs),
    )


HEADS: dict[str, HeadBuilder] = {
    "linear": linear_head,
    "affact-ext": affact_ext_head,
    "mlp": mlp_head,
}


def build_head(name: str, in_features: int, num_outputs: int, **options: Any) -> nn.Module:
    """The head ``name`` of :data:`HEADS`; an unknown name or option is an error naming it."""
    if name not in HEADS:
        raise KeyError(f"unknown head {name!r}; known: {', '.join(HEADS)}")
    try:
        return HEADS[name](in_features, num_outputs, **options)
    except TypeError as error:
        raise TypeError(f"head {name!r}: {error}") from None

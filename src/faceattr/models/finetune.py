"""Freeze the backbone, then fine-tune it at a lower learning rate (seeds 001 and 002)."""

from __future__ import annotations

from typing import Any

from faceattr.models.base import AttributeModel


def set_backbone_trainable(model: AttributeModel, trainable: bool) -> None:
    """Freeze (``False``) or unfreeze the backbone's parameters. A frozen backbone also keeps its
    BatchNorm statistics: it stays in eval mode whatever ``model.train()`` says."""
    for parameter in model.backbone.parameters():
        parameter.requires_grad_(trainable)
    model.backbone_frozen = not trainable
    model.train(model.training)


def param_groups(
    model: AttributeModel, lr: float, backbone_lr: float | None = None
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the head at ``lr``, the backbone at ``backbone_lr`` (default
    ``lr``). Frozen parameters are left out; each group carries its ``name``."""
    groups = [
        ("backbone", model.backbone, lr if backbone_lr is None else backbone_lr),
        ("head", model.head, lr),
    ]
    out = []
    for name, module, group_lr in groups:
        params = [p for p in module.parameters() if p.requires_grad]
        if params:
            out.append({"name": name, "params": params, "lr": group_lr})
    if not out:
        raise ValueError("the model has no trainable parameters")
    return out

"""Freeze the backbone, then fine-tune at a lower learning rate."""

from __future__ import annotations

import torch

from faceattr.models import create_model, param_groups, set_backbone_trainable


def test_freezing_stops_backbone_gradients_and_batchnorm_statistics() -> None:
    model = create_model("facenet-mtl")
    set_backbone_trainable(model, False)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    model.train()
    assert not model.backbone.training and model.head.training
    bn = model.backbone[1]
    before = bn.running_mean.clone()
    model(torch.rand(4, 1, 36, 36) * 5).sum().backward()
    assert torch.equal(bn.running_mean, before)
    groups = param_groups(model, lr=1e-3, backbone_lr=1e-5)
    assert [g["name"] for g in groups] == ["head"]
    assert sum(p.numel() for p in groups[0]["params"]) == 6 * 34


def test_unfreezing_trains_everything_with_a_lower_backbone_rate() -> None:
    model = create_model("facenet-mtl")
    set_backbone_trainable(model, False)
    set_backbone_trainable(model, True)
    assert all(p.requires_grad for p in model.parameters())
    assert model.backbone.training
    groups = param_groups(model, lr=1e-3, backbone_lr=1e-5)
    assert [(g["name"], g["lr"]) for g in groups] == [("backbone", 1e-5), ("head", 1e-3)]
    counted = sum(p.numel() for g in groups for p in g["params"])
    assert counted == sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.SGD(groups, lr=1.0)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-5, 1e-3]

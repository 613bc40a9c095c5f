"""Seed 000's FaceNet against its appendix table."""

from __future__ import annotations

import torch
from torch import nn

from faceattr.models import count_parameters, create_model
from faceattr.models.facenet_mtl import FACENET_ATTRIBUTES


def test_parameter_count_matches_the_appendix_table() -> None:
    count = count_parameters(create_model("facenet-mtl"))
    # Keras: "Total params: 21,732 Trainable params: 21,660 Non-trainable params: 72"
    assert count.keras_total == 21_732
    assert count.trainable == 21_660
    assert count.keras_non_trainable == 72
    assert count.total == 21_660  # PyTorch keeps the 72 moving statistics as buffers


def test_layers_match_the_appendix_table() -> None:
    model = create_model("facenet-mtl")
    convs = [m for m in model.backbone if isinstance(m, nn.Conv2d)]
    assert [c.weight.numel() + c.bias.numel() for c in convs] == [40, 592]
    dense = next(m for m in model.backbone if isinstance(m, nn.Linear))
    assert (dense.in_features, dense.out_features) == (1296, 16)
    heads = list(model.head.heads)
    assert [sum(p.numel() for p in h.parameters()) for h in heads] == [34] * 6
    assert model.attributes == FACENET_ATTRIBUTES
    assert model.input_config.size == (36, 36) and model.input_config.grayscale


def test_facenet_bis_has_five_heads_and_configurable_widths() -> None:
    bis = create_model("facenet-bis")
    assert "Male" not in bis.attributes and len(bis.attributes) == 5
    assert count_parameters(bis).keras_total == 21_732 - 34
    small = create_model("facenet-mtl", f1=4, f2=8, d=8)
    # flatten 9*9*8 = 648 -> dense 8: 40+16 + 296+32 + 5192+32 + 6*18 Keras parameters
    assert count_parameters(small).keras_total == 40 + 16 + 296 + 32 + 5192 + 32 + 6 * 18


def test_softmax_heads_give_one_distribution_per_attribute() -> None:
    model = create_model("facenet-mtl").eval()
    with torch.no_grad():
        outputs = model(torch.rand(3, 1, 36, 36))
    assert outputs.shape == (3, 6, 2)
    assert torch.allclose(torch.softmax(outputs, -1).sum(-1), torch.ones(3, 6))

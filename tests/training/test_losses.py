"""Weighted multi-attribute losses against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from faceattr.models import create_model
from faceattr.training.losses import AttributeLoss, pos_weight_from_labels, task_weight_preset


def bce(logit: float, target: int, pos_weight: float = 1.0) -> float:
    """Binary cross-entropy of one logit, written out."""
    p = 1.0 / (1.0 + math.exp(-logit))
    return -(pos_weight * target * math.log(p) + (1 - target) * math.log(1 - p))


def test_unweighted_mean_is_plain_bce_with_logits() -> None:
    torch.manual_seed(0)
    logits, targets = torch.randn(5, 3), torch.randint(0, 2, (5, 3)).float()
    loss = AttributeLoss(["Male", "Smiling", "Young"])
    expected = F.binary_cross_entropy_with_logits(logits, targets)
    assert torch.allclose(loss(logits, targets), expected)


def test_seed000_task_weights_equal_the_hand_sum() -> None:
    names = ["Male", "Mustache", "Eyeglasses", "No_Beard", "Wearing_Hat", "Bald"]
    logits = [[0.5, -1.0, 2.0, 0.0, -0.3, 1.5], [-2.0, 0.7, -0.4, 1.0, 0.2, -1.1]]
    targets = [[1, 0, 1, 1, 0, 0], [0, 1, 0, 1, 0, 1]]
    loss = AttributeLoss(names, task_weights=task_weight_preset("facenet"), reduction="sum")
    per_attribute = [sum(bce(logits[i][k], targets[i][k]) for i in range(2)) / 2 for k in range(6)]
    weights = [10, 1, 5, 5, 1, 5]  # gender, mustache, eyeglasses, beard, hat, bald
    expected = sum(w * value for w, value in zip(weights, per_attribute, strict=True))
    got = loss(torch.tensor(logits), torch.tensor(targets, dtype=torch.float32))
    assert got.item() == pytest.approx(expected, rel=1e-6)
    mean = AttributeLoss(names, task_weights=task_weight_preset("facenet"))
    got_mean = mean(torch.tensor(logits), torch.tensor(targets, dtype=torch.float32))
    assert got_mean.item() == pytest.approx(expected / 27, rel=1e-6)


def test_softmax2_heads_are_categorical_cross_entropy_per_attribute() -> None:
    torch.manual_seed(1)
    model = create_model("facenet-bis")
    outputs = model(torch.rand(4, 1, 36, 36))
    targets = torch.randint(0, 2, (4, 5))
    weights = task_weight_preset("facenet-bis")
    loss = AttributeLoss(model.attributes, "softmax2", task_weights=weights, reduction="sum")
    expected = sum(
        weights[name] * F.cross_entropy(outputs[:, k], targets[:, k])
        for k, name in enumerate(model.attributes)
    )
    got = loss(outputs, targets)
    assert torch.allclose(got, torch.as_tensor(expected))
    got.backward()
    assert model.head.heads[0].weight.grad is not None


def test_pos_weight_from_known_frequencies() -> None:
    labels = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]])
    assert pos_weight_from_labels(labels).tolist() == [3.0, 1.0, 1.0]
    celeba_coding = np.where(labels == 1, 1, -1)
    assert pos_weight_from_labels(celeba_coding).tolist() == [3.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=r"columns \[1\]"):
        pos_weight_from_labels(np.array([[1, 0], [0, 0]]))
    with pytest.raises(ValueError, match="0/1"):
        pos_weight_from_labels(np.array([[2, 0]]))


def test_pos_weight_scales_the_positive_term() -> None:
    logits = torch.tensor([[0.3, -0.8], [1.2, 0.1]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = AttributeLoss(["Bald", "Eyeglasses"], pos_weight=[4.0, 2.0])
    expected = (bce(0.3, 1, 4.0) + bce(1.2, 0, 4.0) + bce(-0.8, 0, 2.0) + bce(0.1, 1, 2.0)) / 4
    assert loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)
    per_attribute = loss.per_attribute(logits, targets)
    assert per_attribute[0].item() == pytest.approx((bce(0.3, 1, 4.0) + bce(1.2, 0, 4.0)) / 2)


def test_bad_configuration_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="Male"):
        AttributeLoss(["Smiling"], task_weights=task_weight_preset("facenet"))
    with pytest.raises(ValueError, match="3 values for 2"):
        AttributeLoss(["Smiling", "Male"], pos_weight=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="unknown head type"):
        AttributeLoss(["Smiling"], head_type="softmax")
    with pytest.raises(KeyError, match="unknown task weight preset"):
        task_weight_preset("affact")
    loss = AttributeLoss(["Smiling", "Male"])
    with pytest.raises(ValueError, match="do not match"):
        loss(torch.zeros(4, 2), torch.zeros(4, 3))

"""Attributes of three kinds in one model: the output layout, the masked losses against hand
computations, the validation metrics, the training schema, and model.json round trips."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from faceattr.data.schema import Attribute, Schema
from faceattr.models import OutputLayout, create_model, output_width
from faceattr.training.checkpoint import (
    ModelDescription,
    ModelFileError,
    export_model,
    load_checkpoint,
)
from faceattr.training.losses import AttributeLoss, class_weights_from_labels
from faceattr.training.module import AttributeMetrics
from faceattr.training.trainer import training_schema

SCHEMA = Schema(
    (
        Attribute("Male"),
        Attribute("hair", "categorical", classes=("black", "blond", "brown")),
        Attribute("age", "numeric", low=0, high=4, unit="years"),
        Attribute("Smiling"),
    )
)
NAN = math.nan


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def bce(z: float, y: float, pos_weight: float = 1.0) -> float:
    p = sigmoid(z)
    return -(pos_weight * y * math.log(p) + (1 - y) * math.log(1 - p))


def softmax(z: list[float]) -> list[float]:
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def dldl(z: list[float], y: float, sigma: float = 2.0) -> float:
    """KL(q || p) + |E_p - y| over bins 0..4, written out."""
    p = softmax(z)
    g = [math.exp(-((b - y) ** 2) / (2 * sigma**2)) for b in range(len(z))]
    q = [v / sum(g) for v in g]
    kl = sum(qb * (math.log(qb) - math.log(pb)) for qb, pb in zip(q, p, strict=True))
    return kl + abs(sum(b * pb for b, pb in enumerate(p)) - y)


# two images; the second lacks hair and age, the first lacks Smiling
OUTPUTS = [
    [0.3, 1.0, -0.5, 0.2, 0.1, 0.4, 1.2, 0.0, -0.7, -1.1],
    [-0.8, 0.0, 2.0, 0.5, -1.0, -0.2, 0.3, 0.9, 1.5, 0.6],
]
TARGETS = [[1.0, 2.0, 3.0, NAN], [0.0, NAN, NAN, 1.0]]


def test_the_layout_gives_each_attribute_its_slice() -> None:
    layout = OutputLayout(SCHEMA)
    assert output_width(SCHEMA) == layout.width == 1 + 3 + 5 + 1
    assert layout.slices == (slice(0, 1), slice(1, 4), slice(4, 9), slice(9, 10))
    outputs = torch.tensor(OUTPUTS)
    decoded = layout.decode(outputs)
    assert decoded["Male"][0].item() == pytest.approx(sigmoid(0.3))
    assert decoded["hair"][1].tolist() == pytest.approx(softmax([0.0, 2.0, 0.5]))
    p = softmax(OUTPUTS[0][4:9])
    assert decoded["age"][0].item() == pytest.approx(sum(b * v for b, v in enumerate(p)))
    estimates = layout.point_estimates(outputs)
    assert estimates[:, 1].tolist() == [0.0, 1.0]  # the most probable hair class
    assert torch.equal(layout.binary_logits(outputs), outputs[:, [0, 9]])


def test_masked_losses_equal_the_hand_computation_for_every_kind() -> None:
    loss = AttributeLoss(SCHEMA)
    got = loss.per_attribute(torch.tensor(OUTPUTS), torch.tensor(TARGETS))
    male = (bce(0.3, 1) + bce(-0.8, 0)) / 2
    hair = -math.log(softmax([1.0, -0.5, 0.2])[2])  # the first image only
    age = dldl(OUTPUTS[0][4:9], 3.0)  # the first image only
    smiling = bce(0.6, 1)  # the second image only
    assert got.tolist() == pytest.approx([male, hair, age, smiling], rel=1e-5)
    assert loss(torch.tensor(OUTPUTS), torch.tensor(TARGETS)).item() == pytest.approx(
        (male + hair + age + smiling) / 4, rel=1e-5
    )


def test_a_missing_label_adds_nothing_and_no_gradient() -> None:
    outputs = torch.tensor(OUTPUTS, requires_grad=True)
    AttributeLoss(SCHEMA)(outputs, torch.tensor(TARGETS)).backward()
    assert outputs.grad is not None
    assert outputs.grad[1, 1:9].abs().sum() == 0  # image 2 has no hair and no age label
    assert outputs.grad[0, 9] == 0  # image 1 has no Smiling label
    only_missing = torch.tensor([[1.0, NAN, NAN, 0.0]] * 2)
    per = AttributeLoss(SCHEMA).per_attribute(torch.tensor(OUTPUTS), only_missing)
    assert per[1].item() == 0 and per[2].item() == 0


def test_kind_task_and_class_weights() -> None:
    loss = AttributeLoss(
        SCHEMA,
        task_weights={"Male": 2.0},
        kind_weights={"numeric": 0.1},
        pos_weight=[3.0, 1.0],
        class_weights={"hair": [1.0, 1.0, 4.0]},
        reduction="sum",
    )
    got = loss(torch.tensor(OUTPUTS), torch.tensor(TARGETS)).item()
    male = (bce(0.3, 1, 3.0) + bce(-0.8, 0, 3.0)) / 2
    hair = 4.0 * -math.log(softmax([1.0, -0.5, 0.2])[2])
    age = dldl(OUTPUTS[0][4:9], 3.0)
    assert got == pytest.approx(2 * male + hair + 0.1 * age + bce(0.6, 1), rel=1e-5)
    assert class_weights_from_labels(np.array([0, 0, 1, NAN, 0, 1]), 3).tolist() == [
        pytest.approx(5 / 9),
        pytest.approx(5 / 6),
        0.0,
    ]
    with pytest.raises(KeyError, match="unknown kinds"):
        AttributeLoss(SCHEMA, kind_weights={"ordinal": 1.0})


def test_labels_outside_the_range_are_clipped_to_it() -> None:
    loss = AttributeLoss(Schema((SCHEMA["age"],)))
    z = [0.1, 0.2, 0.3, 0.4, 0.5]
    got = loss(torch.tensor([z]), torch.tensor([[9.0]])).item()
    assert got == pytest.approx(dldl(z, 4.0), rel=1e-5)


def test_binary_only_losses_are_unchanged() -> None:
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 3), torch.randint(0, 2, (6, 3)).float()
    targets[2, 1] = NAN
    got = AttributeLoss(["Male", "Smiling", "Young"]).per_attribute(logits, targets)
    known = ~torch.isnan(targets)
    for k in range(3):
        rows = known[:, k]
        expected = torch.nn.functional.binary_cross_entropy_with_logits(
            logits[rows, k], targets[rows, k]
        )
        assert got[k].item() == pytest.approx(expected.item(), rel=1e-6)


def test_validation_metrics_per_kind() -> None:
    metrics = AttributeMetrics(SCHEMA)
    outputs, targets = torch.tensor(OUTPUTS), torch.tensor(TARGETS)
    metrics.update(outputs, targets, torch.tensor(1.0))
    values = metrics.compute("val", SCHEMA.names)
    expected_age = OutputLayout(SCHEMA).decode(outputs)["age"][0].item()
    assert values["val/mae/age"].item() == pytest.approx(abs(expected_age - 3.0), rel=1e-5)
    assert values["val/acc/Male"].item() == 1.0  # 0.3 -> 1, -0.8 -> 0
    assert values["val/acc/hair"].item() == 0.0  # argmax class 0, label 2
    assert values["val/acc/Smiling"].item() == 1.0
    assert values["val/mean_accuracy"].item() == pytest.approx(2 / 3)
    assert "val/acc/age" not in values and "val/mae/hair" not in values


def test_validation_metrics_with_a_single_binary_attribute() -> None:
    schema = SCHEMA.select(["Male", "age"])
    metrics = AttributeMetrics(schema)
    outputs = torch.tensor([[0.3, *OUTPUTS[0][4:9]], [0.5, *OUTPUTS[1][4:9]]])
    metrics.update(outputs, torch.tensor([[1.0, 3.0], [0.0, NAN]]), torch.tensor(1.0))
    values = metrics.compute("val", schema.names)
    assert values["val/acc/Male"].item() == 0.5  # 0.3 -> 1 (right), 0.5 -> 1 (wrong)
    assert values["val/mean_accuracy"].item() == 0.5
    expected_age = OutputLayout(schema).decode(outputs)["age"][0].item()
    assert values["val/mae/age"].item() == pytest.approx(abs(expected_age - 3.0), rel=1e-5)


def test_the_training_schema_takes_the_kinds_from_the_data() -> None:
    data = Schema(
        (Attribute("Male"), Attribute("race", "categorical", classes=("a", "b")), SCHEMA["age"])
    )
    assert training_schema("facenet-mtl", ["age", "Male"], data) == data.select(["age", "Male"])
    assert training_schema("facenet-mtl", None, data) == data  # not all six heads are labelled
    celeba_plus_age = Schema((*Schema.binary(ALL_FACENET).attributes, SCHEMA["age"]))
    chosen = training_schema("facenet-mtl", None, celeba_plus_age)
    assert chosen is not None and chosen.names[-1] == "age" and len(chosen) == 7
    assert training_schema("facenet-mtl", None, None) is None


ALL_FACENET = ("Bald", "Eyeglasses", "Male", "Mustache", "No_Beard", "Wearing_Hat", "Young")


@pytest.mark.parametrize("name", ["facenet-mtl", "scratch-cnn"])
def test_a_model_of_three_kinds_round_trips_through_model_json(tmp_path: Path, name: str) -> None:
    torch.manual_seed(0)
    kwargs = {"input_size": [32, 32], "filters": [4], "dense": [8]} if name == "scratch-cnn" else {}
    model = create_model(name, SCHEMA, **kwargs).eval()
    assert model.head_type == "sigmoid" and model.schema == SCHEMA
    images = torch.rand(2, model.input_config.channels, *model.input_config.size)
    outputs = model(images)
    assert outputs.shape == (2, 10)
    export_model(model, tmp_path)
    written = json.loads((tmp_path / "model.json").read_text())
    assert written["attributes"] == list(SCHEMA.names)
    assert written["schema"][2] == {
        "name": "age",
        "kind": "numeric",
        "low": 0,
        "high": 4,
        "unit": "years",
    }
    loaded = load_checkpoint(tmp_path)
    assert loaded.schema == SCHEMA
    assert torch.equal(loaded(images), outputs)
    again, before = loaded.attribute_outputs(images), model.attribute_outputs(images)
    assert all(torch.equal(again[n], before[n]) for n in SCHEMA.names)
    assert before["hair"].shape == (2, 3) and before["age"].shape == (2,)


def test_binary_model_json_is_unchanged_and_old_files_read_as_binary(tmp_path: Path) -> None:
    model = create_model("facenet-mtl")
    export_model(model, tmp_path)
    written = json.loads((tmp_path / "model.json").read_text())
    assert "schema" not in written and model.head_type == "softmax2"
    description = ModelDescription.from_dict(written, "model.json")
    assert description.attribute_schema == Schema.binary(model.attributes)
    bad = dict(written, schema=[{"name": "Male", "kind": "binary"}])
    with pytest.raises(ModelFileError, match="schema"):
        ModelDescription.from_dict(bad, "model.json")


def test_a_numeric_attribute_needs_its_range_and_softmax2_is_binary_only() -> None:
    with pytest.raises(ValueError, match="range"):
        create_model("scratch-cnn", Schema((Attribute("age", "numeric"),)))
    facenet = create_model("facenet-mtl", SCHEMA)
    assert facenet.head_type == "sigmoid"
    with pytest.raises(ValueError, match="attribute_outputs"):
        facenet.probabilities(torch.rand(1, 1, 36, 36))

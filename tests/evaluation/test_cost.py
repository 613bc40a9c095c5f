"""FLOPs and parameters of a model at its input size, against numbers derived by hand."""

from __future__ import annotations

from faceattr.evaluation.cost import model_cost
from faceattr.models import create_model


def test_facenet_flops_and_parameters_equal_the_hand_count() -> None:
    model = create_model("facenet-mtl").train()
    cost = model_cost(model)
    # 36x36x1 -> conv 3x3 (4) -> pool -> 18x18 conv 3x3 (16) -> pool -> 1296 -> 16 -> 6 x 2.
    macs = 36 * 36 * 4 * 9 * 1 + 18 * 18 * 16 * 9 * 4 + 1296 * 16 + 6 * 16 * 2
    assert cost.flops == 2 * macs == 508_416
    assert cost.keras_parameters == 21_732  # seed 000's Keras summary
    assert cost.parameters == 21_732 - 2 * (4 + 16 + 16)
    assert cost.input_size == (36, 36)
    assert model.training  # the mode is restored
    assert cost.to_dict()["input_size"] == [36, 36]


def test_flops_follow_the_input_size() -> None:
    small = model_cost(create_model("facenet-mtl", input_size=(16, 16), f1=2, f2=4, d=8))
    macs = 16 * 16 * 2 * 9 + 8 * 8 * 4 * 9 * 2 + (4 * 4 * 4) * 8 + 6 * 8 * 2
    assert small.flops == 2 * macs

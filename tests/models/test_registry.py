"""Every registered model: builds, runs forward and backward on a tiny batch, rebuilds from its
``model_args``."""

from __future__ import annotations

import json

import pytest
import torch

from faceattr.attributes import ATTRIBUTES
from faceattr.models import (
    AttributeModel,
    InputConfig,
    create_model,
    list_models,
    logits_to_probabilities,
    register_model,
)

SEED_MODELS = {
    "facenet-mtl",
    "facenet-bis",
    "scratch-cnn",
    "resnet50-affact",
    "resnet50-affact-ext",
    "resnet152-affact",
    "xception-transfer",
    "efficientnetv2-multioutput",
    "resnet50-classweights",
    "densenet121-classweights",
    "mobilenetv2",
    "mobilenetv3",
}


def tiny_batch(model: AttributeModel) -> torch.Tensor:
    """Two images: the model's own size when it is fixed, else 32x32 (global pooling)."""
    size = model.input_config.size if model.fixed_size else (32, 32)
    return torch.randn(2, model.input_config.channels, *size)


def test_the_seed_systems_are_registered() -> None:
    assert set(list_models()) >= SEED_MODELS
    assert list_models("facenet*") == ["facenet-bis", "facenet-mtl"]


@pytest.mark.parametrize("name", list_models())
def test_forward_and_backward(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name).train()
    features = model.forward_features(tiny_batch(model))
    outputs = model.forward_head(features)
    k = len(model.attributes)
    assert features.shape == (2, model.embedding_dim)
    assert outputs.shape == ((2, k, 2) if model.head_type == "softmax2" else (2, k))
    probabilities = logits_to_probabilities(outputs, model.head_type)
    assert probabilities.shape == (2, k)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    outputs.square().mean().backward()
    first = next(model.backbone.parameters())
    last = list(model.head.parameters())[-1]
    assert first.grad is not None and first.grad.abs().sum() > 0
    assert last.grad is not None and last.grad.abs().sum() > 0


def test_forward_is_features_then_head() -> None:
    model = create_model("facenet-mtl").eval()
    batch = torch.rand(4, 1, 36, 36)
    with torch.no_grad():
        outputs = model(batch)
        assert torch.equal(outputs, model.forward_head(model.forward_features(batch)))
        expected = torch.softmax(outputs, dim=-1)[..., 1]
        assert torch.allclose(model.probabilities(batch), expected)


def test_model_args_rebuild_the_same_network() -> None:
    torch.manual_seed(1)
    model = create_model("facenet-mtl", attributes=["Male", "Smiling"], d=8)
    assert model.model_name == "facenet-mtl"
    assert model.model_args == {"f1": 4, "f2": 16, "d": 8, "kernel_size": 3, "input_size": [36, 36]}
    args = json.loads(json.dumps(model.model_args))
    rebuilt = create_model(model.model_name, model.attributes, **args)
    rebuilt.load_state_dict(model.state_dict())
    batch = torch.randn(3, 1, 36, 36)
    model.eval()
    rebuilt.eval()
    assert rebuilt.attributes == ("Male", "Smiling")
    assert torch.equal(model(batch), rebuilt(batch))


def test_generic_backbone_with_any_head() -> None:
    model = create_model(
        "backbone",
        attributes=["Smiling", "Young"],
        arch="resnet18",
        head="affact-ext",
        head_options={"hidden": 8},
        input_size=[32, 32],
    )
    assert model.input_config.size == (32, 32)
    assert model.head[0].out_features == 8
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2)


def test_bad_requests_are_clear_errors() -> None:
    with pytest.raises(KeyError, match="facenet-mtl"):
        create_model("facenet_mtl")
    with pytest.raises(TypeError, match="accepts: f1, f2, d"):
        create_model("facenet-mtl", f3=2)
    with pytest.raises(ValueError, match="Wearing Hat"):
        create_model("facenet-mtl", attributes=["Wearing Hat"])
    with pytest.raises(KeyError, match="unknown head"):
        create_model("backbone", head="transformer")
    with pytest.raises(TypeError, match="not JSON"):
        create_model("backbone", head_options={"hidden": object()})
    model = create_model("facenet-mtl")
    with pytest.raises(ValueError, match="36x36"):
        model(torch.randn(2, 1, 40, 40))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        model(torch.randn(2, 3, 36, 36))
    with pytest.raises(ValueError, match="already registered"):
        register_model("facenet-mtl")(lambda attributes=ATTRIBUTES: model)


def test_probabilities_of_both_head_types() -> None:
    logits = torch.tensor([[0.0, 2.0]])
    assert torch.allclose(logits_to_probabilities(logits, "sigmoid"), torch.sigmoid(logits))
    pairs = torch.tensor([[[1.0, 3.0], [0.5, -0.5]]])
    expected = torch.softmax(pairs, dim=-1)[..., 1]
    assert torch.allclose(logits_to_probabilities(pairs, "softmax2"), expected)
    with pytest.raises(ValueError, match="softmax2"):
        logits_to_probabilities(logits, "softmax2")


def test_input_config_round_trip_and_normalize() -> None:
    model = create_model("xception-transfer")
    config = model.input_config
    assert config == InputConfig(size=(150, 150), channels=3, mean=(0.5,) * 3, std=(0.5,) * 3)
    assert InputConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    ones = torch.ones(1, 3, 2, 2)
    assert torch.allclose(config.normalize(ones), ones)  # (1 - 0.5) / 0.5
    assert config.with_size([64, 32]).size == (64, 32)
    with pytest.raises(ValueError, match="grayscale"):
        InputConfig(size=(36, 36), channels=1, mean=(0.0,), std=(1.0,))
    with pytest.raises(ValueError, match="unknown InputConfig keys"):
        InputConfig.from_dict({"size": [1, 1], "colour": True})

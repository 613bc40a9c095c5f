"""Self-describing checkpoints: exact round trips, refusal of pickled objects, atomic writes."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from faceattr.models import create_model
from faceattr.shipped import shipped_model_path
from faceattr.training.checkpoint import (
    DESCRIPTION_KEY,
    ModelDescription,
    UnsafeCheckpointError,
    export_model,
    init_from,
    load_checkpoint,
    load_description,
    safe_torch_load,
    write_weights,
)
from faceattr.training.trainer import AtomicCheckpointIO


def trained_like(name: str, **kwargs: object) -> torch.nn.Module:
    """A model whose BatchNorm statistics and weights are not the initial ones."""
    model = create_model(name, **kwargs)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
    model.train()
    model(torch.rand(8, model.input_config.channels, *model.input_config.size))
    return model.eval()


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("facenet-mtl", {"attributes": ["Male", "Smiling"], "d": 8}),
        ("backbone", {"arch": "resnet10t", "head": "mlp", "input_size": [32, 32]}),
    ],
)
def test_export_round_trip_gives_identical_outputs(tmp_path: Path, name: str, kwargs: dict) -> None:
    model = trained_like(name, **kwargs)
    folder = export_model(
        model,
        tmp_path / "best",
        config={"trainer": {"seed": 3}},
        metrics={"val/loss": 0.25},
        epoch=4,
    )
    loaded = load_checkpoint(folder)
    images = torch.rand(3, model.input_config.channels, *model.input_config.size)
    assert torch.equal(model(images), loaded(images))
    assert not loaded.training
    description = load_description(folder / "model.json")
    assert description.attributes == model.attributes
    assert description.input_config == model.input_config
    assert (description.metrics, description.epoch, description.thresholds) == (
        {"val/loss": 0.25},
        4,
        None,
    )
    assert description.config == {"trainer": {"seed": 3}}
    assert torch.equal(load_checkpoint(folder / "model.safetensors")(images), model(images))


def test_float16_weights_halve_the_file_and_load_back_as_float32(tmp_path: Path) -> None:
    model = trained_like("backbone", arch="resnet10t", input_size=[32, 32])
    full = export_model(model, tmp_path / "full")
    half = tmp_path / "half"
    half.mkdir()
    (half / "model.json").write_text((full / "model.json").read_text())
    write_weights(model.state_dict(), half, torch.float16)
    size = (half / "model.safetensors").stat().st_size / (full / "model.safetensors").stat().st_size
    assert 0.49 < size < 0.52
    loaded = load_checkpoint(half)
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    images = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        expected, got = torch.sigmoid(model(images)), torch.sigmoid(loaded(images))
    assert not torch.equal(expected, got)  # really rounded
    assert torch.allclose(expected, got, atol=5e-3)


def lightning_like(model: torch.nn.Module, extra: dict | None = None) -> dict:
    return {
        "epoch": 1,
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        DESCRIPTION_KEY: ModelDescription.of(model).to_dict(),
        **(extra or {}),
    }


def test_the_shipped_model_starts_a_fine_tuning_at_another_resolution() -> None:
    shipped = load_checkpoint(shipped_model_path())
    model = create_model("mobilenetv2", shipped.attributes, input_size=[160, 160])
    init_from(model, "shipped")
    assert model.input_config.size == (160, 160)
    state, expected = model.state_dict(), shipped.state_dict()
    assert all(torch.equal(state[k], expected[k]) for k in expected)
    with pytest.raises(ValueError, match="cannot start a mobilenetv3"):
        init_from(create_model("mobilenetv3", ["Male"]), "shipped")


def test_init_onto_new_attributes_keeps_the_backbone_and_builds_a_new_head() -> None:
    shipped = load_checkpoint(shipped_model_path())
    torch.manual_seed(0)
    model = create_model("mobilenetv2", ["wearing_mask", "has_tattoo"])
    fresh_head = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("head.")}
    kept = init_from(model, "shipped")
    assert kept.startswith("the backbone") and "new head for 2 attributes" in kept
    state, expected = model.state_dict(), shipped.state_dict()
    backbone = [k for k in expected if k.startswith("backbone.")]
    assert backbone and all(torch.equal(state[k], expected[k]) for k in backbone)
    assert fresh_head and all(torch.equal(state[k], v) for k, v in fresh_head.items())
    assert model.attributes == ("wearing_mask", "has_tattoo")


def test_a_lightning_checkpoint_loads_with_weights_only(tmp_path: Path) -> None:
    model = trained_like("facenet-mtl")
    torch.save(lightning_like(model), tmp_path / "last.ckpt")
    images = torch.rand(2, 1, 36, 36)
    assert torch.equal(load_checkpoint(tmp_path / "last.ckpt")(images), model(images))


@pytest.mark.parametrize("evil", [argparse.Namespace(lr=0.1), torch.nn.Linear(2, 2)])
def test_a_checkpoint_carrying_a_pickled_object_is_refused(tmp_path: Path, evil: object) -> None:
    model = trained_like("facenet-mtl")
    path = tmp_path / "evil.ckpt"
    torch.save(lightning_like(model, {"hyper_parameters": evil}), path)
    with pytest.raises(
        UnsafeCheckpointError, match=r"refusing .*evil\.ckpt.*pickled Python object"
    ):
        load_checkpoint(path)


def test_broken_descriptions_name_the_file(tmp_path: Path) -> None:
    folder = export_model(trained_like("facenet-mtl"), tmp_path / "m")
    (folder / "model.json").write_text('{"format": "faceattr-model",\n "version": 1,\n oops}')
    with pytest.raises(ValueError, match=r"model\.json:3"):
        load_checkpoint(folder)
    (folder / "model.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a faceattr-model"):
        load_checkpoint(folder)
    with pytest.raises(FileNotFoundError, match="model.json"):
        load_checkpoint(tmp_path)


SAVER = """
import sys, pathlib, torch
from faceattr.training.atomic import atomic_write  # what AtomicCheckpointIO.save_checkpoint calls
path, i = pathlib.Path(sys.argv[1]), 0
weights = torch.randn(2_000_000)
while True:
    weights[0] = i
    atomic_write(path, lambda file: torch.save({"i": i, "weights": weights}, file))
    i += 1
"""


def test_sigkill_while_saving_leaves_a_whole_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    process = subprocess.Popen([sys.executable, "-c", SAVER, str(path)])
    try:
        deadline = time.monotonic() + 120
        while not path.exists():
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        for delay in (0.13, 0.29, 0.07):
            time.sleep(delay)
            state = safe_torch_load(path)  # readable whenever we look, mid-save or not
            assert state["weights"][0] == state["i"]
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    state = safe_torch_load(path)
    assert state["weights"].shape == (2_000_000,) and state["weights"][0] == state["i"]
    leftovers = [p.name for p in tmp_path.iterdir() if p != path]
    assert all(name.startswith(".last.ckpt.") for name in leftovers), leftovers


def test_atomic_io_takes_no_storage_options(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="storage_options"):
        AtomicCheckpointIO().save_checkpoint({}, tmp_path / "x.ckpt", storage_options={"a": 1})


def test_test_time_mirror_averages_each_face_with_its_mirror_and_is_kept(tmp_path: Path) -> None:
    plain = trained_like("facenet-mtl", attributes=["Male", "Smiling"], d=8)
    mirror = create_model("facenet-mtl", attributes=["Male", "Smiling"], d=8, test_time_mirror=True)
    mirror.load_state_dict(plain.state_dict())
    mirror.eval()
    images = torch.rand(4, 1, *plain.input_config.size)
    expected = (plain(images) + plain(images.flip(-1))) / 2
    assert not torch.allclose(plain(images), expected, atol=1e-4)  # faces are not symmetric
    torch.testing.assert_close(mirror(images), expected)
    loaded = load_checkpoint(export_model(mirror, tmp_path / "best"))
    assert loaded.test_time_mirror and loaded.model_args["test_time_mirror"] is True
    torch.testing.assert_close(loaded(images), expected)
    assert torch.equal(mirror.train()(images), plain.train()(images))  # training: one view

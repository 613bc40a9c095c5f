"""``faceattr export --onnx`` and onnxruntime prediction: outputs equal PyTorch's within 1e-4,
for binary models and for a model with binary, categorical and numeric attributes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import faceattr.cli.export  # noqa: F401  (registers `faceattr export`)
from faceattr.cli import app
from faceattr.data.record import FaceDataset
from faceattr.inference.onnx import (
    OUTPUT_NAMES,
    VALUES_NAME,
    NetworkOutputs,
    OnnxNetwork,
    PredictionGraph,
    export_onnx,
    value_slices,
)
from faceattr.inference.predictor import Predictor
from faceattr.inference.values import CategoricalValue
from faceattr.models import create_model
from faceattr.training.checkpoint import export_model, load_checkpoint

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def onnx_file(tiny_real_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    result = CliRunner().invoke(app, ["export", str(tiny_real_model.parent), "--onnx", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output and "max difference" in result.output
    return out


def graph_outputs(graph: PredictionGraph, images: torch.Tensor) -> tuple[np.ndarray, ...]:
    with torch.inference_mode():
        return NetworkOutputs.of(graph(images)).arrays()


def test_onnxruntime_equals_pytorch_at_any_batch_size(
    onnx_file: Path, tiny_real_model: Path
) -> None:
    assert onnx_file.with_suffix(".json").is_file()
    graph = PredictionGraph(load_checkpoint(tiny_real_model)).eval()
    network = OnnxNetwork(onnx_file)
    generator = torch.Generator().manual_seed(0)
    for batch in (1, 5):
        images = torch.randn(batch, 1, 36, 36, generator=generator)
        outputs = network(images).arrays()
        assert network.output_names == OUTPUT_NAMES and outputs[2].shape == (batch, 0)
        for actual, expected in zip(outputs, graph_outputs(graph, images), strict=True):
            assert actual.shape == expected.shape and actual.shape[0] == batch
            np.testing.assert_allclose(actual, expected, atol=TOLERANCE, rtol=0)


def test_onnx_predictor_matches_the_pytorch_predictor(
    onnx_file: Path, tiny_real_model: Path, real_celeba: FaceDataset
) -> None:
    onnx = Predictor.from_checkpoint(onnx_file)
    torch_predictor = Predictor.from_checkpoint(tiny_real_model, device="cpu")
    assert onnx.attributes == torch_predictor.attributes
    rows = real_celeba.split_indices("test")[:3]
    paths = [real_celeba.image_path(int(i)) for i in rows]
    by_onnx = list(onnx.predict_paths(paths, workers=0, progress=False))
    by_torch = list(torch_predictor.predict_paths(paths, workers=0, progress=False))
    for ours, theirs in zip(by_onnx, by_torch, strict=True):
        assert len(ours.faces) == len(theirs.faces) == 1
        assert ours.faces[0].box == theirs.faces[0].box
        for name in ("probabilities", "embedding"):
            np.testing.assert_allclose(
                getattr(ours.faces[0], name), getattr(theirs.faces[0], name), atol=TOLERANCE
            )
    with pytest.raises(TypeError, match="no PyTorch model"):
        _ = onnx.model


def test_a_colour_sigmoid_model_exports_within_tolerance(tmp_path: Path) -> None:
    model = create_model("scratch-cnn", filters=(8,) * 5, dense=(16, 16), input_size=(32, 32))
    folder = export_model(model.eval(), tmp_path / "best")
    result = export_onnx(folder, tmp_path / "scratch.onnx", batch=3)
    assert result.max_difference < TOLERANCE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "scratch.json", "scratch.onnx"]
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    expected = graph_outputs(PredictionGraph(load_checkpoint(folder)).eval(), images)
    actual_outputs = OnnxNetwork(result.onnx_path)(images).arrays()
    for actual, wanted in zip(actual_outputs, expected, strict=True):
        np.testing.assert_allclose(actual, wanted, atol=TOLERANCE, rtol=0)


def test_bad_export_and_onnx_inputs_fail_clearly(
    tiny_real_model: Path, onnx_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"must end in \.onnx"):
        export_onnx(tiny_real_model, tmp_path / "model.bin")
    lonely = tmp_path / "lonely.onnx"
    lonely.write_bytes(onnx_file.read_bytes())
    with pytest.raises(FileNotFoundError, match="lonely.json is missing"):
        Predictor.from_checkpoint(lonely)
    result = CliRunner().invoke(app, ["export", str(tmp_path / "no-run"), "--onnx", str(lonely)])
    assert result.exit_code == 1 and "no model at" in result.output


def test_every_head_of_a_three_kind_model_survives_the_export(
    kinds_model: Path, tmp_path: Path
) -> None:
    """A binary, a categorical and a numeric attribute: onnxruntime's decoded outputs equal
    PyTorch's own decoding (``AttributeModel.decode``) within 1e-4."""
    out = tmp_path / "kinds.onnx"
    result = CliRunner().invoke(app, ["export", str(kinds_model), "--onnx", str(out)])
    assert result.exit_code == 0, result.output
    network = OnnxNetwork(out)
    assert network.output_names == (*OUTPUT_NAMES, VALUES_NAME)
    model = load_checkpoint(kinds_model).eval()
    images = torch.randn(3, 1, 36, 36, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        decoded = {name: t.numpy() for name, t in model.attribute_outputs(images).items()}
    outputs = network(images)
    slices = value_slices(model.schema)
    assert list(slices) == ["hair", "age"]
    np.testing.assert_allclose(outputs.probabilities[:, 0], decoded["Male"], atol=TOLERANCE)
    np.testing.assert_allclose(outputs.probabilities[:, 1], decoded["Smiling"], atol=TOLERANCE)
    hair = outputs.values[:, slices["hair"]]
    np.testing.assert_allclose(hair, decoded["hair"], atol=TOLERANCE)
    np.testing.assert_allclose(hair.sum(axis=1), 1, atol=1e-5)
    age = outputs.values[:, slices["age"]][:, 0]
    np.testing.assert_allclose(age, decoded["age"], atol=TOLERANCE)
    assert ((age > 0) & (age < 90)).all() and np.ptp(age) > 0  # years, one per image
    assert outputs.embedding.shape == (3, 16)


def test_the_onnx_predictor_decodes_every_kind_as_pytorch_does(
    kinds_model: Path, real_celeba: FaceDataset, tmp_path: Path
) -> None:
    out = export_onnx(kinds_model, tmp_path / "kinds.onnx").onnx_path
    photo = real_celeba.image_path(int(real_celeba.split_indices("test")[0]))
    [by_onnx] = Predictor.from_checkpoint(out).predict(photo)
    [by_torch] = Predictor.from_checkpoint(kinds_model, device="cpu").predict(photo)
    assert by_onnx.attributes == by_torch.attributes == ("Male", "Smiling")
    np.testing.assert_allclose(by_onnx.probabilities, by_torch.probabilities, atol=TOLERANCE)
    assert by_onnx.numeric["age"] == pytest.approx(by_torch.numeric["age"], abs=TOLERANCE)
    np.testing.assert_allclose(
        by_onnx.categorical["hair"], by_torch.categorical["hair"], atol=TOLERANCE
    )
    hair = by_onnx.values()["hair"]
    assert isinstance(hair, CategoricalValue) and str(hair) == str(by_torch.values()["hair"])

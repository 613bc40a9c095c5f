"""Robustness curves: the transform matrices by numbers, and seed 003's conclusion on synthetic
faces: a model trained with AFFACT jitter loses less accuracy under test-time rotation and scale
than the same model trained on aligned crops only."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import timm
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from faceattr.data.cache_prepare import prepare_cache
from faceattr.data.synth.generate import generate_dataset
from faceattr.evaluation.figures_ext import robustness_figure
from faceattr.evaluation.robustness import (
    RobustnessCurve,
    robustness_curves,
    robustness_inputs,
    transform_matrices,
)
from faceattr.geometry import transform_points
from faceattr.models import AttributeModel
from faceattr.training import load_checkpoint, load_config, train
from faceattr.training.config import DataConfig
from faceattr.training.trainer import evaluate

FACES = 600
CACHE_SIZE = 48
ARCH = "test_efficientnet_gn"
"""A 0.1M-parameter timm network with GroupNorm: no running statistics, so a few epochs give
stable evaluation-mode accuracies (seed 000's FaceNet keeps Keras' slow BatchNorm averages)."""
ATTRIBUTES = "Male,Smiling,Pointy_Nose,Arched_Eyebrows"
JITTER = (
    "augment.rotation_enabled=true",
    "augment.scale_enabled=true",
    "augment.shift_enabled=true",
)
"""AFFACT's geometric jitter at its default strengths (seed 003, Algorithm 2)."""
PROBES = {"rotation": (-30.0, 0.0, 30.0), "scale": (0.75, 1.0, 1.33), "shift": (-0.1, 0.0, 0.1)}


@dataclass(frozen=True)
class TrainedPair:
    """The same model trained without and with AFFACT jitter, and its test faces."""

    data: DataConfig
    plain: AttributeModel
    affact: AttributeModel
    plain_curves: dict[str, RobustnessCurve]
    affact_curves: dict[str, RobustnessCurve]
    majority: np.ndarray
    """``(K,)`` accuracy of each attribute's majority class on the test faces."""


@pytest.fixture(scope="module")
def trained_pair(tmp_path_factory: pytest.TempPathFactory) -> TrainedPair:
    """Two runs of one recipe on 600 synthetic faces (about 480 train, 60 test), identical but
    for the jitter, and their curves on the test faces."""
    if not timm.is_model(ARCH):
        pytest.skip(f"timm {timm.__version__} lacks {ARCH}; newer timm releases have it")
    base = tmp_path_factory.mktemp("robustness")
    generate_dataset(base / "celeba", FACES, seed=0, workers=0, progress=False)
    prepare_cache(base / "celeba", base / "cache", size=CACHE_SIZE, workers=0, progress=False)
    overrides = [
        f"data.root={base / 'celeba'}",
        f"data.cache={base / 'cache'}",
        f"data.cache_size={CACHE_SIZE}",
        "data.batch_size=16",
        f"data.attributes=[{ATTRIBUTES}]",
        "model.name=backbone",
        f"model.args.arch={ARCH}",
        "model.args.input_size=[32,32]",
        "optimizer.lr=0.005",
        "trainer.epochs=8",
        "trainer.progress=false",
        f"trainer.output_dir={base / 'runs'}",
    ]
    plain_config = load_config(None, overrides)
    plain = load_checkpoint(train(plain_config).last)
    affact = load_checkpoint(train(load_config(None, [*overrides, *JITTER])).last)
    faces = robustness_inputs(plain_config.data, plain.attributes, plain.input_config.size)
    frequency = torch.cat([batch.labels for batch in faces]).float().mean(dim=0)
    return TrainedPair(
        data=plain_config.data,
        plain=plain,
        affact=affact,
        plain_curves=robustness_curves(plain, faces, PROBES, progress=False),
        affact_curves=robustness_curves(affact, faces, PROBES, progress=False),
        majority=torch.maximum(frequency, 1 - frequency).numpy(),
    )


def drops(curves: dict[str, RobustnessCurve]) -> np.ndarray:
    """``(K,)`` accuracy lost at +-30 degrees and at scale 0.75 / 1.33, averaged."""
    rotation = curves["rotation"].attribute_drop([-30, 30])
    return (rotation + curves["scale"].attribute_drop([0.75, 1.33])) / 2


def test_an_affact_trained_model_has_the_flatter_curve(trained_pair: TrainedPair) -> None:
    plain, affact = trained_pair.plain_curves, trained_pair.affact_curves
    male = ATTRIBUTES.split(",").index("Male")
    identity = {"plain": plain["rotation"].accuracy[1], "affact": affact["rotation"].accuracy[1]}
    summary = {
        "majority": trained_pair.majority.round(3).tolist(),
        **{f"{name} accuracy": a.round(3).tolist() for name, a in identity.items()},
        "plain drops": drops(plain).round(3).tolist(),
        "affact drops": drops(affact).round(3).tolist(),
    }
    for accuracy in identity.values():  # both learnt Male: neither curve is a constant's
        assert accuracy[male] > trained_pair.majority[male] + 0.08, summary
    assert drops(plain).mean() > drops(affact).mean() + 0.05, summary
    assert drops(plain)[male] > drops(affact)[male] + 0.05, summary
    assert plain["rotation"].drop([-30, 30]) == pytest.approx(
        plain["rotation"].accuracy_at(0) - plain["rotation"].mean_accuracy[[0, 2]].mean()
    )


def test_the_untransformed_point_is_the_evaluation_accuracy(trained_pair: TrainedPair) -> None:
    metrics = evaluate(trained_pair.plain, trained_pair.data, "test", accelerator="cpu")
    curve = trained_pair.plain_curves["shift"]
    identity = curve.accuracy[curve.row(0.0)]
    expected = [metrics.accuracy[name] for name in curve.attributes]
    np.testing.assert_allclose(identity, expected, atol=1e-6)
    assert curve.count == metrics.count


def test_curves_serialise_and_draw_one_line_per_model(trained_pair: TrainedPair) -> None:
    document = json.loads(json.dumps(trained_pair.affact_curves["scale"].to_dict()))
    assert document["values"] == [0.75, 1.0, 1.33]
    assert set(document["accuracy"]) == set(ATTRIBUTES.split(","))
    assert document["mean_accuracy"][1] == pytest.approx(
        np.mean([v[1] for v in document["accuracy"].values()])
    )
    figure = robustness_figure(
        {"aligned only": trained_pair.plain_curves, "AFFACT": trained_pair.affact_curves}
    )
    assert [a.get_title() for a in figure.axes] == ["rotation", "scale", "shift"]
    for axes in figure.axes:
        assert [line.get_label() for line in axes.get_lines()[:2]] == ["aligned only", "AFFACT"]
    FigureCanvasAgg(figure).draw()


def test_transform_matrices_by_numbers() -> None:
    centre = torch.tensor([[[5.0, 5.0], [6.0, 5.0]]], dtype=torch.float64)

    def moved(kind: str, value: float, size: int | tuple[int, int] = 11) -> np.ndarray:
        return transform_points(transform_matrices(kind, value, 1, size), centre)[0].numpy()

    np.testing.assert_allclose(moved("rotation", 90), [[5, 5], [5, 6]], atol=1e-12)  # clockwise
    np.testing.assert_allclose(moved("scale", 2), [[5, 5], [7, 5]], atol=1e-12)
    np.testing.assert_allclose(moved("shift", 0.1, (40, 20)), [[7, 9], [8, 9]])  # 0.1 x (20, 40)
    for kind, value in (("rotation", 0), ("scale", 1), ("shift", 0)):
        np.testing.assert_allclose(moved(kind, value), centre[0], atol=1e-12)
    with pytest.raises(ValueError, match="unknown transform"):
        transform_matrices("shear", 0.1, 1, 11)
    with pytest.raises(ValueError, match="positive"):
        transform_matrices("scale", 0, 1, 11)


def test_curve_inputs_are_checked(trained_pair: TrainedPair) -> None:
    faces = robustness_inputs(
        trained_pair.data, ["Male"], trained_pair.plain.input_config.size, limit=4
    )
    with pytest.raises(ValueError, match="labels"):
        robustness_curves(trained_pair.plain, faces, progress=False)
    with pytest.raises(ValueError, match="unknown transform"):
        robustness_curves(trained_pair.plain, faces, {"shear": (0.1,)}, progress=False)

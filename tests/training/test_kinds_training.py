"""A tiny model learns a categorical and a numeric attribute of a user's folder: it beats the
majority-class and the training mean/median baselines within seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.data.loaders import load_dataset
from faceattr.data.synth.folder import HAIR_COLOURS
from faceattr.evaluation.kinds import (
    categorical_baseline,
    categorical_scores,
    numeric_baselines,
    numeric_scores,
)
from faceattr.geometry.jitter import AffactJitter
from faceattr.models import AttributeModel
from faceattr.training.checkpoint import load_checkpoint
from faceattr.training.config import DataConfig, load_config
from faceattr.training.datamodule import FaceDataModule
from faceattr.training.trainer import evaluate, train
from faceattr.training.transform import FaceTransform


@pytest.fixture(scope="module")
def kinds_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 synthetic faces as a user's folder (``faceattr data synth --folder``): the 40 binary
    attributes, a categorical ``hair_colour`` and a numeric ``age``, declared in schema.json."""
    folder = tmp_path_factory.mktemp("kinds") / "mine"
    result = CliRunner().invoke(
        app, ["data", "synth", str(folder), "--count", "240", "--folder", "--workers", "0"]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(folder / "labels.csv", keep_default_na=False)
    table["split"] = np.where(table["identity"] % 4 == 0, "val", "train")  # a larger val split
    table.to_csv(folder / "labels.csv", index=False)
    return folder


def test_a_tiny_model_beats_the_baselines_on_categorical_and_numeric(
    kinds_folder: Path, tmp_path: Path
) -> None:
    data = load_dataset(kinds_folder)
    learnt = ["hair_colour", "age"]
    schema = data.schema.select(learnt)
    assert [a.kind for a in schema.attributes] == ["categorical", "numeric"]
    config = load_config(
        "demo_facenet",
        [
            f"data.root={kinds_folder}",
            "data.attributes=[hair_colour,age]",
            "data.crop=image",
            "data.cache=null",
            "loss.kind_weights={numeric: 0.1}",
            "data.batch_size=16",  # 330 steps: seed 000's BatchNorm (momentum 0.01) needs a few
            "optimizer.lr=0.01",  # hundred before its running statistics serve validation
            "trainer.epochs=30",
            "trainer.progress=false",
            f"trainer.output_dir={tmp_path / 'runs'}",
        ],
    )
    run = train(config)
    assert {"val/acc/hair_colour", "val/mae/age", "val/mean_accuracy"} <= set(run.metrics)

    model = load_checkpoint(run.best)
    assert model.schema == schema
    outputs, targets = val_outputs(model, config.data)
    scored = evaluate(model, config.data, split="val", accelerator="cpu")
    train_labels = data.labels[data.split_indices("train")][:, data.schema.columns(learnt)]

    classes = len(HAIR_COLOURS)
    predicted = outputs["hair_colour"].argmax(dim=1).numpy()
    hair = categorical_scores(targets[:, 0], predicted, classes)
    majority = categorical_baseline(train_labels[:, 0], targets[:, 0], classes)
    assert hair.accuracy > majority.accuracy + 0.05, (hair, majority)
    assert scored.accuracy["hair_colour"] == pytest.approx(hair.accuracy, abs=1e-6)

    age = numeric_scores(targets[:, 1], outputs["age"].numpy())
    baselines = numeric_baselines(train_labels[:, 1], targets[:, 1])
    assert age.mae < 0.8 * min(b.mae for b in baselines.values()), (age, baselines)
    assert scored.mean_absolute_error["age"] == pytest.approx(age.mae, rel=1e-4)


def val_outputs(
    model: AttributeModel, data: DataConfig
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """The model's per-attribute outputs on the validation images, and their labels."""
    datamodule = FaceDataModule(data, model.attributes, model.input_config.size)
    transform = FaceTransform(model.input_config, AffactJitter.off())
    outputs: list[dict[str, torch.Tensor]] = []
    targets = []
    with torch.no_grad():
        for batch in datamodule.loader(datamodule.split("val"), train=False):
            images, labels = transform.eval_batch(batch)
            outputs.append(model.attribute_outputs(images))
            targets.append(labels.numpy())
    joined = {name: torch.cat([o[name] for o in outputs]) for name in model.attributes}
    return joined, np.concatenate(targets)

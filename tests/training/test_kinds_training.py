"""A tiny model learns a categorical and a numeric attribute of a user's folder: it beats the
majority-class and the training mean/median baselines within seconds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from faceattr.data.formats import read_attributes, read_identities
from faceattr.data.loaders import load_dataset
from faceattr.data.synth.generate import generate_dataset
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

HAIR = ("gray", "blond", "black", "brown")
"""The synthetic renderer's hair colours, in the order it picks the first one set."""
SCHEMA = [
    {"name": "hair", "kind": "categorical", "classes": list(HAIR)},
    {"name": "masculinity", "kind": "numeric", "low": 0, "high": 70, "unit": "points"},
]


@pytest.fixture(scope="module")
def kinds_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 synthetic faces with a categorical ``hair`` (blank where no colour is drawn) and a
    numeric ``masculinity = 10 + 50 * Male + noise``, declared in ``schema.json``."""
    synth = tmp_path_factory.mktemp("synth") / "celeba"
    generate_dataset(synth, 240, seed=0, progress=False)
    folder = tmp_path_factory.mktemp("kinds") / "mine"
    shutil.copytree(synth / "img_align_celeba", folder / "photos")
    labels = read_attributes(synth / "list_attr_celeba.txt")
    identity = read_identities(synth / "identity_CelebA.txt")

    def column(name: str) -> np.ndarray:
        return labels.labels[:, labels.names.index(name)] == 1

    hair = np.full(len(labels.image_ids), "", dtype=object)
    for name, colour in zip(("Brown", "Black", "Blond", "Gray"), HAIR[::-1], strict=True):
        hair[column(f"{name}_Hair")] = colour  # the later, the stronger: gray wins as drawn
    noise = np.random.default_rng(0).normal(0, 2, len(hair))
    level = np.clip(10 + 50 * column("Male") + noise, 0, 70).round(1)
    table = pd.DataFrame(
        {
            "image": [f"photos/{i}" for i in labels.image_ids],
            "hair": hair,
            "masculinity": level,
            "split": np.where(identity.identity % 4 == 0, "val", "train"),
        }
    )
    table.to_csv(folder / "labels.csv", index=False)
    (folder / "schema.json").write_text(json.dumps(SCHEMA))
    return folder


def test_a_tiny_model_beats_the_baselines_on_categorical_and_numeric(
    kinds_folder: Path, tmp_path: Path
) -> None:
    data = load_dataset(kinds_folder)
    assert [a.kind for a in data.schema.attributes] == ["categorical", "numeric"]
    config = load_config(
        "demo_facenet",
        [
            f"data.root={kinds_folder}",
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
    assert {"val/acc/hair", "val/mae/masculinity", "val/mean_accuracy"} <= set(run.metrics)

    model = load_checkpoint(run.best)
    assert model.schema == data.schema
    outputs, targets = val_outputs(model, config.data)
    scored = evaluate(model, config.data, split="val", accelerator="cpu")
    train_labels = data.labels[data.split_indices("train")]

    hair = categorical_scores(targets[:, 0], outputs["hair"].argmax(dim=1).numpy(), len(HAIR))
    majority = categorical_baseline(train_labels[:, 0], targets[:, 0], len(HAIR))
    assert hair.accuracy > majority.accuracy + 0.05, (hair, majority)
    assert scored.accuracy["hair"] == pytest.approx(hair.accuracy, abs=1e-6)

    level = numeric_scores(targets[:, 1], outputs["masculinity"].numpy())
    baselines = numeric_baselines(train_labels[:, 1], targets[:, 1])
    assert level.mae < 0.8 * min(b.mae for b in baselines.values()), (level, baselines)
    assert scored.mean_absolute_error["masculinity"] == pytest.approx(level.mae, rel=1e-4)


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

"""A user's own folder with a CSV and attribute names CelebA lacks, through every command:
check, train (beating the majority baseline), predict, index and search by those names,
evaluate; and a model trained on CelebA names scored on it by the names they share."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import faceattr
import faceattr.cli.evaluate  # noqa: F401  (registers the commands on the app)
import faceattr.cli.index  # noqa: F401
from faceattr.cli import app
from faceattr.data.formats import read_attributes, read_identities
from faceattr.data.loaders import load_dataset
from faceattr.data.synth.generate import generate_dataset
from faceattr.training.config import load_config
from faceattr.training.trainer import train

runner = CliRunner()
NAMES = {"Male": "is_man", "Smiling": "smiles", "Eyeglasses": "has_glasses"}


@pytest.fixture(scope="module")
def own_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 synthetic faces as a user's folder: ``photos/*.jpg`` and ``labels.csv`` with the
    user's names (yes/no), a split (a quarter of the people in val) and an identity column; a
    blank cell marks a missing label."""
    synth = tmp_path_factory.mktemp("synth") / "celeba"
    generate_dataset(synth, 240, seed=3, progress=False)
    folder = tmp_path_factory.mktemp("own") / "mine"
    shutil.copytree(synth / "img_align_celeba", folder / "photos")
    labels = read_attributes(synth / "list_attr_celeba.txt")
    identity = read_identities(synth / "identity_CelebA.txt")
    table = pd.DataFrame({"image": [f"photos/{i}" for i in labels.image_ids]})
    for celeba, mine in NAMES.items():
        column = labels.labels[:, labels.names.index(celeba)]
        table[mine] = np.where(column == 1, "yes", "no")
    table.loc[3, "smiles"] = ""  # one missing label
    table["split"] = np.where(identity.identity % 4 == 0, "val", "train")
    table["identity"] = identity.identity
    table.to_csv(folder / "labels.csv", index=False)
    return folder


def test_the_folder_loads_with_the_users_schema(own_folder: Path) -> None:
    data = load_dataset(own_folder)
    assert data.format == "folder" and data.attribute_names == tuple(NAMES.values())
    assert np.isnan(data.labels[3, 1]) and int(data.known.sum()) == 240 * 3 - 1
    result = runner.invoke(app, ["data", "check", str(own_folder)])
    assert result.exit_code == 0, result.output
    assert "missing labels: 1" in result.output


def test_train_predict_index_and_search_by_the_users_names(
    own_folder: Path, tmp_path: Path
) -> None:
    config = load_config(
        "demo_facenet",
        [
            f"data.root={own_folder}",
            "data.crop=image",
            "data.cache=null",
            "data.batch_size=32",
            "trainer.epochs=8",
            "trainer.progress=false",
            f"trainer.output_dir={tmp_path / 'runs'}",
        ],
    )
    run = train(config)
    model_json = json.loads((run.best / "model.json").read_text())
    assert model_json["attributes"] == list(NAMES.values())
    data = load_dataset(own_folder)
    train_rows, val_rows = data.split_indices("train"), data.split_indices("val")
    majority = []
    for k in range(3):
        known_train = data.labels[train_rows, k][~np.isnan(data.labels[train_rows, k])]
        guess = float(known_train.mean() >= 0.5)
        known_val = data.labels[val_rows, k][~np.isnan(data.labels[val_rows, k])]
        majority.append(float((known_val == guess).mean()))
    assert run.metrics["val/mean_accuracy"] > np.mean(majority) + 0.02

    photo = own_folder / "photos" / str(data.image_ids[val_rows[0]]).split("/")[-1]
    predicted = runner.invoke(
        app, ["predict", str(photo), "--model", str(run.best), "--format", "json"]
    )
    assert predicted.exit_code == 0, predicted.output
    assert "has_glasses" in predicted.stdout and "Eyeglasses" not in predicted.stdout

    db = str(tmp_path / "faces.db")
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in val_rows[:6]:
        shutil.copy(data.image_path(int(i)), photos)
    indexed = runner.invoke(app, ["index", str(photos), "--db", db, "--model", str(run.best)])
    assert indexed.exit_code == 0, indexed.output
    found = runner.invoke(app, ["search", "is_man or not is_man", "--db", db])
    assert found.exit_code == 0 and "no face matches" not in found.stdout
    refused = runner.invoke(app, ["search", "Male", "--db", db])
    assert refused.exit_code == 2 and "unknown attribute 'Male'" in refused.stderr


def test_a_celeba_model_is_scored_on_exactly_the_shared_names(
    own_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    shipped = Path(faceattr.__file__).parent / "weights" / "mobilenetv2-celeba"
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(shipped),
            "--dataset",
            f"folder:{own_folder}",
            "--alias",
            "is_man=Male",
            "--alias",
            "smiles=Smiling",
            "--split",
            "val",
            "--protocols",
            "A",
            "--tune",
            "none",
            "--no-save-thresholds",
            "--no-progress",
            "--out",
            str(tmp_path / "eval"),
        ],
    )
    assert result.exit_code == 0, result.output
    evaluation = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert evaluation["attributes"] == ["Male", "Smiling"]  # has_glasses: no alias, no score
    assert len(evaluation["left_out"]) == 38 and "Eyeglasses" in evaluation["left_out"]
    assert evaluation["dataset"].startswith("folder:")
    assert "scored 2 shared attributes" in result.stdout

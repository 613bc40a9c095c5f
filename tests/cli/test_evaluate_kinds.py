"""``faceattr evaluate``, ``report`` and ``compare`` on a tiny model of three kinds: eval.json holds
the binary scores as before and the categorical and numeric scores and baselines as scikit-learn
computes them on the same predictions; the report draws a confusion matrix and a numeric plot."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
)
from typer.testing import CliRunner

import faceattr.cli.evaluate  # noqa: F401  (registers `evaluate` and `compare`)
import faceattr.cli.report  # noqa: F401  (registers `report`)
from faceattr.cli import app
from faceattr.data.formats import read_attributes
from faceattr.data.synth.generate import generate_dataset
from faceattr.training import load_config, train

runner = CliRunner()
HAIR = ("gray", "blond", "black", "brown")
SCHEMA = [
    {"name": "Male", "kind": "binary"},
    {"name": "Smiling", "kind": "binary"},
    {"name": "hair", "kind": "categorical", "classes": list(HAIR)},
    {"name": "masculinity", "kind": "numeric", "low": 0, "high": 70, "unit": "points"},
]
QUIET = ["--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def kinds_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo_facenet run (one epoch) on 120 synthetic faces in a folder with binary ``Male`` and
    ``Smiling``, a categorical ``hair`` (blank: no colour drawn) and a numeric ``masculinity``,
    split train/val/test by row."""
    base = tmp_path_factory.mktemp("kinds-eval")
    generate_dataset(base / "synth", 120, seed=1, workers=0, progress=False)
    folder = base / "mine"
    shutil.copytree(base / "synth" / "img_align_celeba", folder / "photos")
    labels = read_attributes(base / "synth" / "list_attr_celeba.txt")

    def column(name: str) -> np.ndarray:
        return labels.labels[:, labels.names.index(name)] == 1

    hair = np.full(len(labels.image_ids), "", dtype=object)
    for name, colour in zip(("Brown", "Black", "Blond", "Gray"), HAIR[::-1], strict=True):
        hair[column(f"{name}_Hair")] = colour
    noise = np.random.default_rng(0).normal(0, 4, len(hair))
    rows = np.arange(len(hair))
    pd.DataFrame(
        {
            "image": [f"photos/{i}" for i in labels.image_ids],
            "Male": column("Male").astype(int),
            "Smiling": column("Smiling").astype(int),
            "hair": hair,
            "masculinity": np.clip(10 + 50 * column("Male") + noise, 0, 70).round(1),
            "split": np.select([rows % 5 == 3, rows % 5 == 4], ["val", "test"], "train"),
        }
    ).to_csv(folder / "labels.csv", index=False)
    (folder / "schema.json").write_text(json.dumps(SCHEMA))
    overrides = [f"data.root={folder}", "data.crop=image", "data.cache=null"]
    overrides += ["trainer.epochs=1", "trainer.progress=false", f"trainer.output_dir={base}"]
    return train(load_config("demo_facenet", overrides)).run_dir


def test_evaluate_report_and_compare_a_model_of_three_kinds(
    kinds_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    run = Path(shutil.copytree(kinds_run, tmp_path / "run"))
    result = runner.invoke(app, ["evaluate", str(run), "--protocols", "A,C", *QUIET])
    assert result.exit_code == 0, result.output
    document = json.loads((run / "eval" / "eval.json").read_text())
    assert document["attributes"] == ["Male", "Smiling"]
    assert len(document["thresholds"]["values"]) == 2
    assert document["left_out"] == []
    assert [a["name"] for a in document["kind_attributes"]] == ["hair", "masculinity"]
    predictions = np.load(run / "eval" / "predictions.npz")
    truth = predictions["kind_labels"].astype(np.float64)
    data = pd.read_csv(Path(document["data_root"]) / "labels.csv")
    train_rows = data[data["split"] == "train"]

    for protocol in ("A", "C"):
        guess = predictions[f"kind_{protocol}"]
        scores = document["protocols"][protocol]["kinds"]
        known = ~np.isnan(truth[:, 0])
        y, p = truth[known, 0].astype(int), guess[known, 0].astype(int)
        hair = scores["hair"]
        assert hair["count"] == known.sum() > 5
        assert hair["accuracy"] == pytest.approx(accuracy_score(y, p))
        assert hair["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
        assert hair["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, p))
        assert hair["confusion"] == confusion_matrix(y, p, labels=range(len(HAIR))).tolist()
        level = scores["masculinity"]
        assert level["count"] == len(truth)
        assert level["mae"] == pytest.approx(mean_absolute_error(truth[:, 1], guess[:, 1]))
        rmse = np.sqrt(mean_squared_error(truth[:, 1], guess[:, 1]))
        assert level["rmse"] == pytest.approx(rmse)
        assert level["cs"] == pytest.approx(np.mean(np.abs(truth[:, 1] - guess[:, 1]) <= 5))
    assert len(document["protocols"]["A"]["per_attribute"]["accuracy"]) == 2
    printed = document["protocols"]["A"]["kinds"]
    assert f"MAE {printed['masculinity']['mae']:.2f}" in result.output
    assert f"accuracy {100 * printed['hair']['accuracy']:.2f}%" in result.output

    baselines = document["baselines"]["kinds"]
    majority = train_rows["hair"].dropna().value_counts()
    assert HAIR[int(baselines["hair"]["majority"]["value"])] == majority.index[0]
    test_hair = truth[~np.isnan(truth[:, 0]), 0]
    chosen = float(HAIR.index(majority.index[0]))
    assert baselines["hair"]["majority"]["accuracy"] == pytest.approx(np.mean(test_hair == chosen))
    mean, median = train_rows["masculinity"].mean(), train_rows["masculinity"].median()
    assert baselines["masculinity"]["mean"]["value"] == pytest.approx(mean)
    assert baselines["masculinity"]["median"]["value"] == pytest.approx(median)
    expected = mean_absolute_error(truth[:, 1], np.full(len(truth), mean))
    assert baselines["masculinity"]["mean"]["mae"] == pytest.approx(expected)

    out = tmp_path / "report"
    reported = runner.invoke(app, ["report", str(run / "eval"), "--out", str(out)])
    assert reported.exit_code == 0, reported.output
    for name in ("confusion_hair", "numeric_masculinity"):
        with Image.open(out / f"{name}.png") as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) > 100
    markdown = (out / "report.md").read_text()
    assert "Categorical and numeric attributes" in markdown and "masculinity" in markdown

    last = runner.invoke(
        app, ["evaluate", str(run / "last"), "--protocols", "A", "--tune", "none", *QUIET]
    )
    assert last.exit_code == 0, last.output
    compared = runner.invoke(
        app, ["compare", str(run / "eval"), str(run / "eval-last"), "--out", str(tmp_path / "c")]
    )
    assert compared.exit_code == 0, compared.output
    assert (tmp_path / "c" / "compare.csv").is_file()


def test_evaluate_a_model_without_binary_attributes(kinds_run: Path, tmp_path: Path) -> None:
    overrides = [f"data.root={kinds_run.parent / 'mine'}", "data.crop=image", "data.cache=null"]
    overrides += ["data.attributes=[hair,masculinity]", "schedule.monitor=val/loss"]
    overrides += ["schedule.monitor_mode=min", "trainer.epochs=1", "trainer.progress=false"]
    run = train(load_config("demo_facenet", [*overrides, f"trainer.output_dir={tmp_path}"]))
    out = tmp_path / "eval"
    result = runner.invoke(
        app, ["evaluate", str(run.run_dir), "--protocols", "A", "--out", str(out), *QUIET]
    )
    assert result.exit_code == 0, result.output
    document = json.loads((out / "eval.json").read_text())
    scores = document["protocols"]["A"]["kinds"]
    assert scores["masculinity"]["count"] > 0 and scores["hair"]["count"] > 0
    assert "MAE" in result.output and document["attributes"] == []

"""``faceattr evaluate`` and ``faceattr compare`` end to end: a synthetic run (two exports side by
side), a run on real images with landmarks from the detector, and errors that exit 2."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import faceattr.cli.evaluate  # noqa: F401  (registers `evaluate` and `compare`)
from faceattr.cli import app
from faceattr.data.formats import (
    AttributeTable,
    PartitionTable,
    write_attributes,
    write_partition,
)
from faceattr.data.landmarks import detect_landmarks
from faceattr.data.record import FaceDataset
from faceattr.training import load_config, train

runner = CliRunner()
QUIET = ["--no-progress", "--device", "cpu"]


@pytest.fixture
def run(synth_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the synthetic run, with the protocol cache in ``tmp_path``."""
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    return Path(shutil.copytree(synth_run, tmp_path / "run"))


def read_csv(path: Path) -> list[list[str]]:
    with path.open() as file:
        return list(csv.reader(file))


def test_evaluate_two_exports_and_compare_them(run: Path, tmp_path: Path) -> None:
    best = runner.invoke(app, ["evaluate", str(run), "--protocols", "A,D", *QUIET])
    assert best.exit_code == 0, best.output
    assert "| attribute | A | D | majority |" in best.output and "| mean |" in best.output
    last = runner.invoke(
        app, ["evaluate", str(run / "last"), "--protocols", "A,D,T", "--tune", "none", *QUIET]
    )
    assert last.exit_code == 0, last.output
    assert "thresholds 0.5" in last.output
    command = json.loads((run / "eval" / "eval.json").read_text())["command"]
    expected = f"faceattr evaluate {run} --protocols A,D --split test --tune accuracy"
    assert command.startswith(expected)

    out = tmp_path / "compare"
    compared = runner.invoke(app, ["compare", str(run), str(run / "eval-last"), "--out", str(out)])
    assert compared.exit_code == 0, compared.output
    summary = read_csv(out / "compare.csv")
    assert summary[0][-7:] == [
        "error_A",
        "accuracy_A",
        "error_D",
        "accuracy_D",
        "error_T",
        "accuracy_T",
        "error_majority",
    ]
    assert [row[0] for row in summary[1:]] == ["run", "run#2"]
    assert summary[1][-3:-1] == ["", ""]  # best/ was not evaluated on T
    best_eval = json.loads((run / "eval" / "eval.json").read_text())
    assert float(summary[1][7]) == pytest.approx(best_eval["protocols"]["A"]["mean"]["error"])
    assert summary[0][2] == "dataset" and summary[1][2].startswith("celeba:")
    detail = read_csv(out / "compare_attributes.csv")
    assert detail[0] == ["attribute", "run/A", "run/D", "run#2/A", "run#2/D", "run#2/T", "majority"]
    names = best_eval["attributes"]
    assert [row[0] for row in detail[1:]] == names  # the first model's order
    errors = {row[0]: float(row[1]) for row in detail[1:]}
    expected = best_eval["protocols"]["A"]["per_attribute"]["error"]
    assert [errors[name] for name in names] == pytest.approx(expected)
    assert len(json.loads((out / "compare.json").read_text())["models"]) == 2
    assert "| run#2 |" in (out / "compare.md").read_text()


def real_sample(celeba: FaceDataset, rows: np.ndarray, root: Path) -> Path:
    """A CelebA folder of the real images of ``rows`` (links) with their own attribute and
    partition files (a few rows: loading takes no time)."""
    root.mkdir(parents=True, exist_ok=True)
    ids = celeba.image_ids[rows]
    assert celeba.partition is not None
    write_attributes(
        root / "list_attr_celeba.txt",
        AttributeTable(ids, celeba.attribute_names, celeba.labels[rows]),
    )
    write_partition(root / "list_eval_partition.txt", PartitionTable(ids, celeba.partition[rows]))
    (root / "img_align_celeba").mkdir()
    for row in rows:
        os.symlink(celeba.image_path(int(row)), root / "img_align_celeba" / celeba.image_ids[row])
    return root


def test_evaluate_on_real_images_with_detected_landmarks(
    real_celeba: FaceDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "cache"))
    splits = [
        real_celeba.split_indices(s)[:n] for s, n in (("train", 64), ("val", 24), ("test", 24))
    ]
    root = real_sample(real_celeba, np.concatenate(splits), tmp_path)
    detect_landmarks(root, progress=False)
    overrides = [f"data.root={root}", f"trainer.output_dir={tmp_path / 'runs'}"]
    overrides += ["trainer.epochs=1", "trainer.progress=false"]
    run_dir = train(load_config("demo_facenet", overrides)).run_dir

    result = runner.invoke(app, ["evaluate", str(run_dir), "--protocols", "A,D", "--limit", "24"])
    assert result.exit_code == 0, result.output
    data = json.loads((run_dir / "eval" / "eval.json").read_text())
    assert data["data_root"] == str(root) and data["thresholds"]["source"] == "val-accuracy"
    assert data["protocols"]["A"]["count"] == 24
    manifest = json.loads((Path(data["protocol_dir"]) / "manifest.json").read_text())
    assert manifest["protocols"]["A"]["crop_counts"]["own"] == 24  # detected, not defaults
    assert "calibration: fitted on val-A" in result.output
    assert "baselines fitted on the 64 present training images" in result.output

    # The same images without landmark or box files: said loudly, or detected when asked.
    bare = real_sample(real_celeba, np.concatenate(splits), tmp_path / "bare")
    words = ["evaluate", str(run_dir), "--root", str(bare), "--protocols", "A,D", "--limit", "24"]
    silent = runner.invoke(app, [*words, "--out", str(tmp_path / "whole"), *QUIET])
    assert silent.exit_code == 0, silent.output
    assert "WARNING: protocol A scored 24 whole images" in silent.output
    assert "WARNING: protocol D scored 24 whole images" in silent.output
    detected = runner.invoke(app, [*words, "--detect", "--out", str(tmp_path / "det"), *QUIET])
    assert detected.exit_code == 0, detected.output
    assert "WARNING" not in detected.output
    assert json.loads((tmp_path / "det" / "eval.json").read_text())["whole_image"] == {}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["evaluate", "/no/such/run"], "neither a run folder"),
        (["evaluate", "RUN", "--tune", "auc"], "--tune must be one of"),
        (["evaluate", "RUN", "--protocols", "A,X"], "unknown protocols ['X']"),
        (["evaluate", "RUN", "--limit", "0"], "--limit must be positive"),
        (["compare", "RUN"], "run `faceattr evaluate"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(
    arguments: list[str], message: str, tmp_path: Path
) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.yaml").write_text("{}\n")
    words = [str(tmp_path / "run") if word == "RUN" else word for word in arguments]
    result = runner.invoke(app, words)
    assert result.exit_code == 2
    assert message in result.output

"""`faceattr cv` and `faceattr sweep` on the tiny fake CelebA folder: the printed tables, the files,
a rerun that trains nothing, and arguments refused before any training."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import faceattr.cli.cv  # noqa: F401  (registers the commands on the app)
import faceattr.cli.sweep  # noqa: F401
from faceattr.cli import app
from faceattr.training.config import load_config

runner = CliRunner()


def tiny(root: Path, out: Path) -> list[str]:
    """facenet-mtl on the 12 decoded fake faces, one epoch of batches of two."""
    return [
        f"data.root={root}",
        "data.batch_size=2",
        "model.name=facenet-mtl",
        "trainer.epochs=1",
        "trainer.progress=false",
        f"trainer.output_dir={out}",
    ]


def test_cv_prints_mean_and_std_and_a_rerun_trains_nothing(
    fake_celeba: Path, tmp_path: Path
) -> None:
    arguments = ["cv", *tiny(fake_celeba, tmp_path), "--folds", "2", "--out", str(tmp_path / "cv")]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "val/mean_accuracy: " in result.output and " +- " in result.output
    assert "fold 0" in result.output and "val/acc/Male" in result.output
    weights = tmp_path / "cv" / "fold-1" / "best" / "model.safetensors"
    written = weights.stat().st_mtime_ns

    again = runner.invoke(app, arguments)
    assert again.exit_code == 0, again.output
    assert weights.stat().st_mtime_ns == written
    assert again.output.splitlines()[-4:] == result.output.splitlines()[-4:]


def test_sweep_grid_prints_trials_and_writes_a_trainable_best_recipe(
    fake_celeba: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        app, ["sweep", *tiny(fake_celeba, tmp_path), "--grid", "optimizer.name=adam,sgd"]
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "sweep-run"  # the default: <trainer.output_dir>/sweep-<trainer.name>
    assert (out / "sweep.db").is_file() and (out / "trials.csv").is_file()
    assert "COMPLETE" in result.output and "best: trial " in result.output
    best = load_config(out / "best.yaml")
    assert best.optimizer.name in ("adam", "sgd") and best.data.root == str(fake_celeba)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--grid", "optimizer.lr=0.1,0.01", "--space", "optimizer.lr=float:0.1:1"], "either"),
        (["--space", "optimizer.lr=float:0.01:0.1"], "--trials"),
        (["--grid", "optimizer.lr=0.1", "--trials", "3"], "drop --trials"),
        (["--space", "optimizer.lr=float:1:0.1", "--trials", "2"], "LOW < HIGH"),
        (["--grid", "optimizer.lr=0.1,quick"], "optimizer.lr"),
        (["--grid", "optimizer.lr=0.1,0.2", "--direction", "up"], "direction"),
    ],
)
def test_bad_sweeps_exit_2_before_training(
    fake_celeba: Path, tmp_path: Path, options: list[str], message: str
) -> None:
    result = runner.invoke(app, ["sweep", *tiny(fake_celeba, tmp_path), *options])
    assert result.exit_code == 2
    assert message in result.output
    assert not list(tmp_path.glob("*/sweep.db"))


def test_cv_refuses_one_fold(fake_celeba: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["cv", *tiny(fake_celeba, tmp_path), "--folds", "1"])
    assert result.exit_code == 2
    assert "--folds" in result.output

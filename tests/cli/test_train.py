"""`faceattr train`: argument handling and errors that name the bad key (runs are tested in
tests/training, where the command also runs in a subprocess)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import faceattr.cli.train  # noqa: F401  (registers the command on the app)
from faceattr.cli import app
from faceattr.cli.train import split_arguments
from faceattr.training.config import ConfigError

RECIPE = Path(__file__).resolve().parents[2] / "configs" / "facenet_mtl.yaml"
runner = CliRunner()


def test_recipe_and_overrides_are_told_apart() -> None:
    assert split_arguments(["a.yaml", "data.root=/x", "trainer.epochs=2"]) == (
        Path("a.yaml"),
        ["data.root=/x", "trainer.epochs=2"],
    )
    assert split_arguments(["data.root=/x"]) == (None, ["data.root=/x"])
    with pytest.raises(ConfigError, match="one recipe"):
        split_arguments(["a.yaml", "b.yaml"])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([str(RECIPE)], "data.root"),
        ([str(RECIPE), "data.root=/x", "data.batch_sise=3"], "data.batch_sise"),
        ([str(RECIPE), "data.root=/x", "trainer.epochs=ten"], "trainer.epochs"),
        (["missing.yaml", "data.root=/x"], "missing.yaml: no such recipe"),
        (["multi_source_mobilenetv2"], "set data.sources.0.root="),
        (
            ["multi_source_mobilenetv2", *(f"data.sources.{i}.root=/{i}" for i in (0, 1))]
            + ["data.sources.1.weight=-1"],
            "data.sources[1].weight: must be positive",
        ),
        (
            ["multi_source_mobilenetv2", *(f"data.sources.{i}.root=/{i}" for i in (0, 1))],
            "no list_attr_celeba.txt or .csv in /0,",  # data.sources.0.root reached the loader
        ),
        (["--resume", "/no/run"], "no such recipe"),
        ([str(RECIPE), "--resume", "/no/run"], "give no recipe"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(arguments: list[str], message: str) -> None:
    result = runner.invoke(app, ["train", *arguments])
    assert result.exit_code == 2
    assert message in result.output


def test_a_missing_data_root_folder_is_reported(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            str(RECIPE),
            f"data.root={tmp_path / 'nowhere'}",
            "trainer.progress=false",
            f"trainer.output_dir={tmp_path / 'runs'}",
        ],
    )
    assert result.exit_code == 2
    assert "is not a folder" in result.output

"""``faceattr explain``: one synthetic photo through a trained run writes the page and its PNG
files; a faceless image, an unknown attribute and a missing model are reported; a model with
categorical and numeric attributes gets their maps and values."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

import faceattr.cli.explain  # noqa: F401  (registers `faceattr explain`)
from faceattr.cli import app
from faceattr.data.record import FaceDataset
from faceattr.inference.predictor import Predictor
from faceattr.inference.values import CategoricalValue
from faceattr.training.config import load_config
from faceattr.training.trainer import CONFIG_FILE

runner = CliRunner()


def first_image(run: Path) -> Path:
    """An aligned synthetic photo of the data the run trained on."""
    root = Path(load_config(run / CONFIG_FILE).data.root)
    return min((root / "img_align_celeba").glob("*.jpg"))


def explain(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["explain", *args])
    return result.exit_code, result.stdout, result.stderr


def test_one_photo_writes_the_page_and_every_figure(synth_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "explained"
    args = ["--model", str(synth_run), str(first_image(synth_run)), "--out", str(out)]
    code, stdout, stderr = explain(*args, "--attribute", "Male", "-a", "Eyeglasses")
    assert code == 0, stderr
    assert f"page: {out / 'explain.html'}" in stdout
    assert "face 1: 2 stage grids" in stdout

    written = {path.name for path in out.iterdir()}
    expected = {"explain.html", "face1_crop.png", "face1_stage1.png", "face1_stage2.png"}
    assert expected | {"face1_Male.png", "face1_Eyeglasses.png"} <= written
    page = (out / "explain.html").read_text()
    linked = set(re.findall(r'<img src="([^"]+)"', page))
    assert linked == written - {"explain.html"}  # every figure shown, linked relatively
    assert "Eyeglasses: p = " in page
    assert "Stage 2 (6): 16 of 16 channels, 18x18" in page  # 36x36 input, second conv block
    with Image.open(out / "face1_stage2.png") as grid:
        assert grid.width >= 250  # enlarged for reading (the maps are 18x18)


def test_a_faceless_image_still_gets_a_page(synth_run: Path, tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (120, 160), (128, 140, 150)).save(blank)
    code, _, stderr = explain("--model", str(synth_run), str(blank), "--out", str(tmp_path / "o"))
    assert code == 1
    assert f"no face found in {blank}" in stderr
    assert "No face found." in (tmp_path / "o" / "explain.html").read_text()


def test_bad_arguments_are_named(synth_run: Path, tmp_path: Path) -> None:
    image, out = str(first_image(synth_run)), str(tmp_path / "out")
    code, _, stderr = explain("--model", str(synth_run), image, "-a", "Wavy_Hair", "--out", out)
    assert code == 2
    assert "the model does not predict Wavy_Hair; it predicts: Male, Mustache, Eyeglasses" in stderr
    code, _, stderr = explain("--model", str(tmp_path / "none"), image, "--out", out)
    assert code == 2 and f"no model at {tmp_path / 'none'}" in stderr
    code, _, stderr = explain("--model", str(synth_run), str(tmp_path / "a.jpg"), "--out", out)
    assert code == 2 and "cannot read" in stderr
    assert not (tmp_path / "out").exists()


def test_categorical_and_numeric_attributes_are_explained(
    kinds_model: Path, real_celeba: FaceDataset, tmp_path: Path
) -> None:
    photo = real_celeba.image_path(int(real_celeba.split_indices("test")[0]))
    [face] = Predictor.from_checkpoint(kinds_model, device="cpu").predict(photo)
    age, hair = face.values()["age"], face.values()["hair"]
    out = tmp_path / "kinds"
    code, stdout, stderr = explain("--model", str(kinds_model), str(photo), "--out", str(out))
    assert code == 0, stderr
    assert f"hair {hair}, age {age}" in stdout  # e.g. "hair black (0.286), age 45.4 years"
    assert str(age).endswith(" years")
    assert {"face1_hair.png", "face1_age.png"} <= {path.name for path in out.iterdir()}
    page = (out / "explain.html").read_text()
    assert f"age: {age} (evidence for a higher value); HiResCAM at 6" in page
    assert isinstance(hair, CategoricalValue)
    assert f"hair: {hair} (evidence for {hair.label})" in page

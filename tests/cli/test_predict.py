"""``faceattr predict``: table, JSON and CSV output on real photos; skipped files are listed, not
fatal."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

import faceattr.cli.predict  # noqa: F401  (registers `faceattr predict`)
from faceattr.cli import app
from faceattr.data.record import FaceDataset
from faceattr.inference.values import CategoricalValue, NumericValue

runner = CliRunner()
REAL = 3


@pytest.fixture(scope="module")
def photo_folder(real_celeba: FaceDataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three real faces (one in a subfolder), a corrupt JPEG, a faceless PNG and a text file."""
    folder = tmp_path_factory.mktemp("photos")
    (folder / "more").mkdir()
    rows = real_celeba.split_indices("test")[:REAL]
    for k, row in enumerate(rows):
        shutil.copy(real_celeba.image_path(int(row)), folder / ("more" if k == 2 else "."))
    (folder / "corrupt.jpg").write_bytes(b"this is not a JPEG file")
    Image.new("RGB", (120, 160), (128, 140, 150)).save(folder / "blank.png")
    (folder / "notes.txt").write_text("not an image suffix: never read")
    return folder


def predict(model: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["predict", "--model", str(model), "--workers", "0", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_lists_every_image_and_stderr_the_skipped_ones(
    tiny_real_model: Path, photo_folder: Path
) -> None:
    code, stdout, stderr = predict(tiny_real_model.parent, str(photo_folder), "--format", "json")
    assert code == 0, stderr
    document = json.loads(stdout)
    assert len(document) == REAL + 2
    by_name = {Path(entry["path"]).name: entry for entry in document}
    assert by_name["corrupt.jpg"]["error"].startswith("unreadable: ")
    assert by_name["blank.png"]["error"] == "no face found"
    faces = [entry["faces"] for entry in document if entry["error"] is None]
    assert len(faces) == REAL and all(len(f) == 1 for f in faces)
    attributes = faces[0][0]["attributes"]
    assert len(attributes) == 40 and 0 <= attributes["Smiling"]["probability"] <= 1
    assert f"skipped {photo_folder / 'corrupt.jpg'}: unreadable" in stderr
    assert f"skipped {photo_folder / 'blank.png'}: no face found" in stderr
    assert "notes.txt" not in stdout + stderr
    assert f"{REAL + 2} images, {REAL + 1} read, {REAL} faces" in stderr


def test_table_shows_present_attributes_or_all(tiny_real_model: Path, photo_folder: Path) -> None:
    photo = min(p for p in photo_folder.glob("*.jpg") if p.name != "corrupt.jpg")
    code, stdout, _ = predict(tiny_real_model, str(photo), "--all", "--no-progress")
    assert code == 0
    lines = stdout.splitlines()
    assert lines[0] == f"{photo} (178x218): 1 face(s)"
    assert lines[1].startswith("  face 1: box x=")
    rows = lines[2:]
    assert len(rows) == 40 and all("(threshold 0.50)" in row for row in rows)
    present = [row for row in rows if "  yes  " in row]
    code, stdout, _ = predict(tiny_real_model, str(photo), "--no-progress")
    shown = stdout.splitlines()[2:]
    assert shown == (present or ["    (no attribute at or above its threshold)"])


def test_csv_has_a_row_per_face_and_per_skipped_image(
    tiny_real_model: Path, photo_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "predictions.csv"
    code, stdout, _ = predict(
        tiny_real_model, str(photo_folder), "--format", "csv", "--out", str(out)
    )
    assert code == 0 and stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == REAL + 2
    assert len(rows[0]) == 10 + 40
    faces = [row for row in rows if row["face"] == "1"]
    assert len(faces) == REAL and all(0 <= float(row["Male"]) <= 1 for row in faces)
    errors = sorted(row["error"] for row in rows if row["face"] == "")
    assert errors[0] == "no face found" and errors[1].startswith("unreadable: ")


def test_nothing_readable_or_bad_paths_exit_non_zero(
    tiny_real_model: Path, photo_folder: Path, tmp_path: Path
) -> None:
    code, _, stderr = predict(tiny_real_model, str(photo_folder / "corrupt.jpg"))
    assert code == 1 and "1 images, 0 read, 0 faces" in stderr
    code, _, stderr = predict(tiny_real_model, str(tmp_path / "missing*.jpg"))
    assert code == 1 and "no image file matches" in stderr
    code, _, stderr = predict(tmp_path / "no-model", str(photo_folder))
    assert code == 1 and "no model at" in stderr


def test_numeric_and_categorical_attributes_in_every_format(
    kinds_model: Path, photo_folder: Path, tmp_path: Path
) -> None:
    """Table: age in years, hair as its class and probability, the binary attributes against
    their own thresholds (0.3, 0.7); JSON: every value; CSV: age, hair and hair_p columns."""
    from faceattr.inference.predictor import Predictor

    photo = min(p for p in photo_folder.glob("*.jpg") if p.name != "corrupt.jpg")
    [face] = Predictor.from_checkpoint(kinds_model, device="cpu").predict(photo)
    values = face.values()
    age, hair = values["age"], values["hair"]
    assert isinstance(age, NumericValue) and isinstance(hair, CategoricalValue)

    code, stdout, stderr = predict(kinds_model, str(photo), "--all", "--no-progress")
    assert code == 0, stderr
    rows = stdout.splitlines()[2:]
    assert [row.split()[0] for row in rows] == ["Male", "hair", "age", "Smiling"]
    assert rows[1] == f"    hair                 {hair.label} ({hair.probability:.3f})"
    assert rows[2] == f"    age                  {age.value:.1f} years"
    assert rows[0].endswith("(threshold 0.30)") and rows[3].endswith("(threshold 0.70)")

    code, stdout, _ = predict(kinds_model, str(photo), "--format", "json", "--no-progress")
    attributes = json.loads(stdout)[0]["faces"][0]["attributes"]
    assert attributes["age"] == {"kind": "numeric", "value": age.value, "unit": "years"}
    assert attributes["hair"]["label"] == hair.label
    assert attributes["hair"]["probabilities"] == pytest.approx(hair.probabilities)
    assert attributes["Smiling"]["threshold"] == pytest.approx(0.7)

    out = tmp_path / "kinds.csv"
    code, _, _ = predict(kinds_model, str(photo_folder), "--format", "csv", "--out", str(out))
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert list(table[0])[10:] == ["Male", "hair", "hair_p", "age", "Smiling"]
    [row] = [r for r in table if r["path"] == str(photo)]
    assert float(row["age"]) == pytest.approx(age.value, abs=1e-4)
    assert row["hair"] == hair.label
    assert float(row["hair_p"]) == pytest.approx(hair.probability, abs=1e-6)
    assert all(r["hair"] == r["age"] == "" for r in table if r["error"])

"""`faceattr index` and `faceattr search`: a real run on a few CelebA photos, re-run skips,
JSON and table output, --like, and the errors (exit 2) naming the bad attribute or token."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import faceattr.cli.index  # noqa: F401  (registers the commands on the app)
from faceattr.attributes import ATTRIBUTES
from faceattr.cli import app
from faceattr.data.record import FaceDataset
from faceattr.data.schema import CELEBA_SCHEMA, Attribute, Schema
from faceattr.inference.predictor import FacePrediction
from faceattr.retrieval.store import FileEntry, IndexModel, IndexStore

runner = CliRunner()


@pytest.fixture
def empty_index(tmp_path: Path) -> str:
    """An index bound to a model, with no face yet."""
    db = str(tmp_path / "faces.db")
    with IndexStore.open(db, create=True) as store:
        store.bind_model(IndexModel("0" * 64, "tiny", CELEBA_SCHEMA))
    return db


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "Eyeglases and not Male",
            "unknown attribute 'Eyeglases' at position 0; did you mean 'Eyeglasses'?",
        ),
        ("Male and (Smiling or", "expected an attribute name, 'not' or '(' at position 20"),
        ("Smiling > 2", "probability 2 at position 10 is outside [0, 1]"),
        ("not " * 47 + "Male", "nests at most 12 parentheses and 'not'"),
        (" or ".join(["Male"] * 128), "at most 64 attribute terms"),
        ("(" * 329 + "Male" + ")" * 329, "nests at most 12 parentheses and 'not'"),
    ],
)
def test_bad_queries_exit_2_naming_the_problem(empty_index: str, query: str, message: str) -> None:
    result = runner.invoke(app, ["search", query, "--db", empty_index])
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert runner.invoke(app, ["search", "Male", "--db", empty_index]).stdout == "no face matches\n"


def test_missing_index_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["search", "Male", "--db", str(tmp_path / "none.db")])
    assert result.exit_code == 2
    assert "no index at" in result.stderr


def test_index_then_search(real_celeba: FaceDataset, tiny_real_model: Path, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    rows = [i for i in real_celeba.split_indices("val") if real_celeba.present[i]][:3]
    faces = [Path(shutil.copy(real_celeba.image_path(i), photos)) for i in rows]
    (photos / "broken.png").write_bytes(b"\x89PNG not really")
    db = str(tmp_path / "faces.db")
    arguments = ["index", str(photos), "--model", str(tiny_real_model), "--db", db]
    arguments += ["--workers", "0", "--device", "cpu", "--no-progress"]

    first = runner.invoke(app, arguments)
    assert first.exit_code == 0, first.output
    assert "added 3, skipped 0 (unchanged), failed 1, faces 3" in first.stdout
    assert f"failed {(photos / 'broken.png').resolve()}: unreadable" in first.stdout
    again = runner.invoke(app, arguments)
    assert "added 0, skipped 4 (unchanged), failed 0, faces 0" in again.stdout

    listed = runner.invoke(app, ["search", "", "--db", db, "--format", "json"])
    hits = json.loads(listed.stdout)
    assert sorted(hit["path"] for hit in hits) == sorted(str(p.resolve()) for p in faces)
    assert set(hits[0]["probabilities"]) == set(ATTRIBUTES)

    male = hits[0]["probabilities"]["Male"]
    table = runner.invoke(app, ["search", f"Male>={male}", "--db", db, "--limit", "5"])
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert "Male" in lines[0] and any(line.endswith(hits[0]["path"]) for line in lines[1:])

    like = runner.invoke(app, ["search", "--like", str(faces[1]), "--db", db, "--format", "json"])
    assert like.exit_code == 0, like.output
    assert json.loads(like.stdout)[0]["path"] == str(faces[1].resolve())


def test_search_shows_numeric_values_and_classes(tmp_path: Path) -> None:
    schema = Schema(
        (
            Attribute("Smiling"),
            Attribute("age", "numeric", low=0, high=100, unit="years"),
            Attribute("race", "categorical", classes=("White", "Asian", "Middle Eastern")),
        )
    )
    db = str(tmp_path / "faces.db")
    rows = {"/p/a.jpg": (0.9, 25.0, (0.1, 0.7, 0.2)), "/p/b.jpg": (0.2, 61.5, (0.1, 0.2, 0.7))}
    with IndexStore.open(db, create=True) as store:
        store.bind_model(IndexModel("1" * 64, "kinds", schema))
        for path, (smiling, age, race) in rows.items():
            face = FacePrediction(
                box=(0.0, 0.0, 9.0, 9.0),
                landmarks=((0.0, 0.0),) * 5,
                detection_score=1.0,
                attributes=("Smiling",),
                probabilities=np.array([smiling], np.float32),
                thresholds=np.full(1, 0.5, np.float32),
                embedding=np.eye(4, dtype=np.float32)[len(path) % 4],
                schema=schema,
                numeric={"age": age},
                categorical={"race": np.array(race, np.float32)},
            )
            store.write_files([FileEntry(path, 1, 1, path.rjust(64, "0"), faces=[face])])

    table = runner.invoke(app, ["search", "age<30 and Smiling", "--db", db])
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert len(lines) == 2 and lines[1].split()[3:5] == ["25.00", "0.900"]
    listed = runner.invoke(app, ["search", "race='middle eastern'", "--db", db, "--format", "json"])
    (hit,) = json.loads(listed.stdout)
    assert hit["path"] == "/p/b.jpg" and hit["values"] == {"age": 61.5, "race": "Middle Eastern"}
    assert hit["probabilities"] == {"Smiling": pytest.approx(0.2), "race": pytest.approx(0.7)}
    shown = runner.invoke(app, ["search", "race!=White", "--db", db]).stdout
    assert "Middle Easte" in shown and "Asian" in shown
    wrong = runner.invoke(app, ["search", "race=Asain", "--db", db])
    assert wrong.exit_code == 2
    assert "unknown class 'Asain' of race at position 5" in wrong.stderr

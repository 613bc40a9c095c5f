"""Numeric and categorical attributes in the query language and the index: parsing, the errors
naming the token, bound parameters only, searches on SQLite and PostgreSQL returning exactly the
faces a hand-written predicate picks (FAISS ``like`` filters included), and a real index of an
untrained model of three kinds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
import torch
from sqlalchemy.dialects import postgresql

from faceattr.data.schema import Attribute, Schema
from faceattr.inference.predictor import FacePrediction, Predictor
from faceattr.models import create_model
from faceattr.retrieval.indexer import index_paths
from faceattr.retrieval.query import And, Category, Not, QueryError, Threshold, parse_query
from faceattr.retrieval.store import FileEntry, IndexModel, IndexStore
from faceattr.training.checkpoint import export_model

RACES = ("White", "Black", "Asian", "Middle Eastern", "Robert'); DROP TABLE faces;--")
SCHEMA = Schema(
    (
        Attribute("Smiling"),
        Attribute("age", "numeric", low=0, high=100, unit="years"),
        Attribute("race", "categorical", classes=RACES),
    )
)
MODEL = IndexModel("d" * 64, "kinds", SCHEMA, "/models/kinds")
Face = dict[str, Any]
"""A face as a hand-written predicate sees it: Smiling, age, race and p_race."""


def test_numeric_and_categorical_terms_parse() -> None:
    query = parse_query("age<30 and Smiling or RACE = asian", SCHEMA)
    assert str(query) == "((age<30 and Smiling>=0.5) or race=Asian)"
    assert query.root is not None and query.attributes == ("age", "Smiling", "race")
    assert parse_query("age between 20 and 30.5", SCHEMA).root == And(
        (Threshold("age", ">=", 20.0, 100.0), Threshold("age", "<=", 30.5, 100.0))
    )
    assert parse_query("race != 'Middle Eastern'", SCHEMA).root == Not(
        Category("race", "Middle Eastern")
    )
    assert parse_query('not race="middle eastern" and age>=-1', SCHEMA).root == And(
        (Not(Category("race", "Middle Eastern")), Threshold("age", ">=", -1.0, 100.0))
    )
    assert parse_query("Smiling between 0.2 and 0.4", SCHEMA).root == And(
        (Threshold("Smiling", ">=", 0.2), Threshold("Smiling", "<=", 0.4))
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("age", "'age' at position 0 is numeric: compare it with a number"),
        ("Smiling and race", "'race' at position 12 is categorical: test its class with ="),
        ("race>0.5", "'race' at position 0 is categorical"),
        ("age = 30", "'=' at position 4 tests a categorical attribute's class; age is numeric"),
        ("race=Asain", "unknown class 'Asain' of race at position 5 (classes: White, Black, "),
        ("race=Asain", "did you mean 'Asian'?"),
        ("race=", "expected a class of race at position 5, found end of query"),
        ("race=(", "expected a class of race at position 5, found '('"),
        ("age<thirty", "expected a number at position 4, found 'thirty'"),
        ("age between 20 or 30", "expected 'and' at position 15, found 'or'"),
        ("age between 20 and", "expected a number at position 18, found end of query"),
        ("Smiling between 0 and 2", "probability 2 at position 22 is outside [0, 1]"),
        ("rase=Asian", "unknown attribute 'rase' at position 0; did you mean 'race'?"),
        ("race='Asian", 'unexpected character "\'" at position 5'),
        ("age<30 ; DROP TABLE faces", "unexpected character ';' at position 7"),
    ],
)
def test_errors_name_the_token(text: str, message: str) -> None:
    with pytest.raises(QueryError) as error:
        parse_query(text, SCHEMA)
    assert message in str(error.value)


def test_classes_and_numbers_reach_sql_as_bound_parameters() -> None:
    table = sa.Table(
        "faces",
        sa.MetaData(),
        sa.Column("v_age", sa.Double),
        sa.Column("c_race", sa.Text),
        sa.Column("p_race", sa.Double),
    )
    columns = {"age": table.c.v_age, "race": (table.c.c_race, table.c.p_race)}
    query = parse_query(f'race="{RACES[-1]}" and age>31.5', SCHEMA)
    compiled = query.where(columns).compile(dialect=postgresql.dialect())
    assert "DROP" not in str(compiled) and "31.5" not in str(compiled)
    assert set(compiled.params.values()) == {RACES[-1], 31.5}


def make_face(rng: np.random.Generator) -> FacePrediction:
    """A face with a random P(Smiling), age and five class probabilities."""
    embedding = rng.normal(size=8).astype(np.float32)
    race = rng.dirichlet(np.ones(len(RACES)) * 0.7).astype(np.float32)
    return FacePrediction(
        box=(1.0, 2.0, 3.0, 4.0),
        landmarks=((0.0, 0.0),) * 5,
        detection_score=0.9,
        attributes=("Smiling",),
        probabilities=np.array([rng.random()], np.float32),
        thresholds=np.full(1, 0.5, np.float32),
        embedding=embedding / np.linalg.norm(embedding),
        schema=SCHEMA,
        numeric={"age": float(np.float32(rng.uniform(0, 100)))},
        categorical={"race": race},
    )


def as_face(prediction: FacePrediction) -> Face:
    race = prediction.categorical["race"].astype(np.float64)
    chosen = int(np.argmax(race))
    return {
        "Smiling": float(prediction.probabilities[0]),
        "age": prediction.numeric["age"],
        "race": RACES[chosen],
        "p_race": race[chosen],
    }


QUERIES: list[tuple[str, Callable[[Face], bool]]] = [
    ("age<30 and Smiling", lambda f: f["age"] < 30 and f["Smiling"] >= 0.5),
    ("age>=40", lambda f: f["age"] >= 40),
    ("age between 20 and 60", lambda f: 20 <= f["age"] <= 60),
    ("race=asian", lambda f: f["race"] == "Asian"),
    ("race!=White and not age>70", lambda f: f["race"] != "White" and f["age"] <= 70),
    ("race='Middle Eastern' or race=black", lambda f: f["race"] in ("Middle Eastern", "Black")),
    (f'race="{RACES[-1]}"', lambda f: f["race"] == RACES[-1]),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def kinds_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[IndexStore]:
    """A SQLite or PostgreSQL index of 80 random faces of SCHEMA."""
    db = str(tmp_path / "faces.db")
    if request.param == "postgresql":
        db = str(request.getfixturevalue("postgres_db"))
    rng = np.random.default_rng(0)
    with IndexStore.open(db, create=True, ann_path=tmp_path / "faces.faiss") as store:
        store.bind_model(MODEL)
        store.write_files(
            [FileEntry(f"/p/{i}.jpg", 1, 1, f"{i:064d}", faces=[make_face(rng)]) for i in range(80)]
        )
        yield store


def test_searches_return_exactly_the_matching_faces(kinds_store: IndexStore) -> None:
    hits = kinds_store.search("", limit=1000)
    faces: dict[int, Face] = {}
    for hit in hits:
        assert set(hit.probabilities) == {"Smiling", "race"}
        assert set(hit.values) == {"age", "race"} and hit.values["race"] in RACES
        faces[hit.face_id] = {
            **hit.probabilities,
            **hit.values,
            "p_race": hit.probabilities["race"],
        }
    record = kinds_store.face(hits[3].face_id)
    assert record is not None and record.values == hits[3].values
    with IndexStore.open(kinds_store.engine.url.render_as_string(False)) as reopened:
        assert reopened.schema == SCHEMA
    for text, predicate in QUERIES:
        expected = {i for i, face in faces.items() if predicate(face)}
        found = kinds_store.search(text, limit=1000)
        assert {hit.face_id for hit in found} == expected, text
        assert 0 < len(expected) < len(faces), text
        scores = [hit.score for hit in found]
        assert all(s >= 0 for s in scores) and scores == sorted(scores, reverse=True), text
        for exact in (False, True):
            similar = kinds_store.search(text, limit=1000, like=record.embedding, exact=exact)
            assert {hit.face_id for hit in similar} == expected, (text, exact)
    assert kinds_store.search("race=Asian", limit=1)[0].values["race"] == "Asian"
    with pytest.raises(QueryError, match="unknown class 'Latino' of race"):
        kinds_store.search("race=Latino")


def test_stored_values_are_the_decoded_outputs(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    faces = [make_face(rng) for _ in range(5)]
    with IndexStore.open(str(tmp_path / "faces.db"), create=True) as store:
        store.bind_model(MODEL)
        store.write_files([FileEntry("/p/a.jpg", 1, 1, "0" * 64, faces=faces)])
        hits = sorted(store.search("", limit=10), key=lambda hit: hit.face_id)
    for hit, face in zip(hits, faces, strict=True):
        truth = as_face(face)
        assert hit.values == {"age": pytest.approx(truth["age"]), "race": truth["race"]}
        assert hit.probabilities == {
            "Smiling": pytest.approx(truth["Smiling"]),
            "race": pytest.approx(truth["p_race"]),
        }


def test_an_untrained_model_of_three_kinds_indexes_real_faces(
    collection: list[Path], tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = create_model("facenet-mtl", SCHEMA).eval()
    export_model(model, tmp_path / "model")
    predictor = Predictor.from_checkpoint(tmp_path / "model", device="cpu")
    with IndexStore.open(str(tmp_path / "faces.db"), create=True) as store:
        summary = index_paths(store, predictor, collection, progress=False, workers=0)
        assert summary.faces >= 5 and store.schema == SCHEMA
        hits = store.search("", limit=100)
        ages = sorted(float(hit.values["age"]) for hit in hits)
        assert all(0 <= age <= 100 for age in ages)
        middle = (ages[len(ages) // 2 - 1] + ages[len(ages) // 2]) / 2
        younger = store.search(f"age<{middle}", limit=100)
        assert {hit.face_id for hit in younger} == {
            hit.face_id for hit in hits if float(hit.values["age"]) < middle
        }
        assert 0 < len(younger) < len(hits)
        face = predictor.predict(collection[0])[0]
        best = store.search("", like=face.embedding, limit=1)[0]
        assert best.path == str(collection[0].resolve())
        assert best.values["age"] == pytest.approx(face.numeric["age"], abs=1e-4)
        race = face.values()["race"]
        assert best.values["race"] == race.label  # type: ignore[union-attr]

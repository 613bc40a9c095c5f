"""IndexStore on both backends with hand-made faces: writes, replacement, stats, model binding,
transactions, search errors; SQLite's WAL and URLs; query complexity: queries as deep and as wide
as the limits allow give the brute-force matches (hypothesis generates them), and any query beyond
a limit is a `QueryError` naming it, before SQL or Python's recursion limit is reached."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from faceattr.attributes import ATTRIBUTES
from faceattr.data.schema import CELEBA_SCHEMA, Schema
from faceattr.inference.predictor import FacePrediction
from faceattr.retrieval.query import MAX_DEPTH, MAX_TERMS, QueryError, parse_query
from faceattr.retrieval.store import (
    FileEntry,
    FileState,
    IndexModel,
    IndexModelError,
    IndexStore,
    database_url,
)

MODEL = IndexModel("a" * 64, "tiny", CELEBA_SCHEMA, "/models/tiny")
OTHER = IndexModel("b" * 64, "other", Schema.binary(("Male", "Smiling")))


def make_face(rng: np.random.Generator, attributes: tuple[str, ...] = ATTRIBUTES) -> FacePrediction:
    """A face with random probabilities and a unit embedding of 8 dimensions."""
    embedding = rng.normal(size=8).astype(np.float32)
    x, y, w, h = (float(v) for v in rng.uniform(0, 100, 4))
    return FacePrediction(
        box=(x, y, w, h),
        landmarks=tuple((float(x), float(y)) for x, y in rng.uniform(0, 100, (5, 2))),
        detection_score=float(rng.uniform(0.5, 1)),
        attributes=attributes,
        probabilities=rng.random(len(attributes)).astype(np.float32),
        thresholds=np.full(len(attributes), 0.5, np.float32),
        embedding=embedding / np.linalg.norm(embedding),
    )


def entry(path: str, faces: list[FacePrediction], error: str | None = None) -> FileEntry:
    return FileEntry(path, 100, 1, path[-64:].rjust(64, "0"), faces=faces, error=error)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty index location on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "faces.db")
    return str(request.getfixturevalue("postgres_db"))


@pytest.fixture
def store(db: str) -> Iterator[IndexStore]:
    """A fresh index bound to MODEL."""
    with IndexStore.open(db, create=True) as opened:
        opened.bind_model(MODEL)
        yield opened


def test_write_replace_and_stats(store: IndexStore, db: str) -> None:
    rng = np.random.default_rng(0)
    store.write_files(
        [
            entry("/p/a.jpg", [make_face(rng), make_face(rng)]),
            entry("/p/b.jpg", [make_face(rng)]),
            entry("/p/c.jpg", [], error="no face found"),
        ]
    )
    stats = store.stats()
    assert (stats.files, stats.failed, stats.faces, stats.model) == (3, 1, 3, MODEL.fingerprint)
    before = {hit.face_id for hit in store.search("", limit=10) if hit.path == "/p/a.jpg"}
    replacement = make_face(rng)
    store.write_files([entry("/p/a.jpg", [replacement])])
    after = [hit for hit in store.search("", limit=10) if hit.path == "/p/a.jpg"]
    assert len(after) == 1 and after[0].face_id not in before
    record = store.face(after[0].face_id)
    assert record is not None
    np.testing.assert_array_equal(record.embedding, replacement.embedding)
    assert record.box == replacement.box and record.landmarks == replacement.landmarks
    assert record.probabilities["Male"] == float(
        replacement.probabilities[ATTRIBUTES.index("Male")]
    )
    assert store.stats().faces == 2
    store.write_files([entry("/p/b.jpg", [make_face(rng)] * 3), entry("/p/b.jpg", [])])
    assert store.file_states()["/p/b.jpg"].faces == 0 and store.stats().faces == 1
    assert store.file_states()["/p/c.jpg"].status == "failed"
    with IndexStore.open(db) as reopened:
        assert reopened.model == MODEL
        assert reopened.stats() == store.stats()


def test_another_model_is_refused_unless_reindex(store: IndexStore) -> None:
    store.write_files([entry("/p/a.jpg", [make_face(np.random.default_rng(1))])])
    with pytest.raises(IndexModelError, match="built with model tiny .*not other .*--reindex"):
        store.bind_model(OTHER)
    store.bind_model(OTHER, reindex=True)
    assert store.attributes == ("Male", "Smiling") and store.stats().files == 0
    store.write_files([entry("/p/a.jpg", [make_face(np.random.default_rng(2), OTHER.attributes)])])
    assert len(store.search("Male or not Male")) == 1
    with pytest.raises(QueryError, match="unknown attribute 'Young'"):
        store.search("Young")


def test_a_failed_batch_loses_only_itself(store: IndexStore) -> None:
    rng = np.random.default_rng(3)
    store.write_files([entry("/p/a.jpg", [make_face(rng)])])
    wrong = make_face(rng, ("Male",))
    with pytest.raises(ValueError, match="attributes differ"):
        store.write_files([entry("/p/b.jpg", [make_face(rng)]), entry("/p/c.jpg", [wrong])])
    assert set(store.file_states()) == {"/p/a.jpg"}
    assert store.stats().faces == 1


def test_stat_updates_and_indexed_paths(store: IndexStore, tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"x")
    store.write_files([entry(str(photo.resolve()), [make_face(np.random.default_rng(4))])])
    old = store.file_states()[str(photo.resolve())]
    store.update_stats([FileState(old.path, 7, 99, old.sha256, old.status, 0)])
    new = store.file_states()[str(photo.resolve())]
    assert (new.size, new.mtime_ns, new.sha256, new.faces) == (7, 99, old.sha256, 1)
    assert store.is_indexed_path(photo)
    assert store.is_indexed_path(tmp_path / "sub" / ".." / "photo.jpg")
    assert not store.is_indexed_path(tmp_path / "other.jpg")


def test_search_arguments_are_checked(store: IndexStore) -> None:
    store.write_files([entry("/p/a.jpg", [make_face(np.random.default_rng(5))])])
    with pytest.raises(QueryError, match="did you mean 'Eyeglasses'"):
        store.search("Eyeglases")
    with pytest.raises(ValueError, match="limit"):
        store.search("", limit=0)
    with pytest.raises(ValueError, match="like has 3 dimensions; the index's embeddings have 8"):
        store.search("", like=np.ones(3))
    with pytest.raises(ValueError, match="non-zero"):
        store.search("", like=np.zeros(8))


def test_a_reader_follows_the_model_an_indexer_binds(db: str) -> None:
    with IndexStore.open(db, create=True) as reader, IndexStore.open(db) as writer:
        assert reader.search("Male") == []
        writer.bind_model(MODEL)
        writer.write_files([entry("/p/a.jpg", [make_face(np.random.default_rng(6))])])
        assert len(reader.search("")) == 1
        writer.bind_model(OTHER, reindex=True)
        writer.write_files(
            [entry("/p/b.jpg", [make_face(np.random.default_rng(7), OTHER.attributes)])]
        )
        assert [hit.path for hit in reader.search("Smiling or not Smiling")] == ["/p/b.jpg"]
        assert reader.stats().model_name == "other"


def test_an_empty_index_finds_nothing(db: str) -> None:
    with IndexStore.open(db, create=True) as empty:
        assert empty.search("Male and not Smiling") == []
        assert empty.face(1) is None
        assert empty.stats().model is None
        with pytest.raises(QueryError):  # no model yet: any name, but well-formed
            empty.search("Male and (")


def test_sqlite_readers_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    db = str(tmp_path / "faces.db")
    with IndexStore.open(db, create=True) as writer, IndexStore.open(db) as reader:
        writer.bind_model(MODEL)
        with writer.engine.begin() as connection:
            connection.execute(
                writer.files.insert().values(
                    path="/p/x.jpg", size=1, mtime_ns=1, sha256="0", status="ok", faces=0
                )
            )
            assert reader.stats().files == 0  # the uncommitted row is invisible, not blocking
        assert reader.stats().files == 1
        with reader.engine.connect() as connection:
            assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"


def test_database_urls(tmp_path: Path) -> None:
    assert database_url(str(tmp_path / "f.db")).render_as_string() == f"sqlite:///{tmp_path}/f.db"
    url = database_url("postgresql://me@db.example:5433/faces")
    assert (url.drivername, url.host, url.port, url.database) == (
        "postgresql+psycopg",
        "db.example",
        5433,
        "faces",
    )
    with pytest.raises(ValueError, match="unsupported index database"):
        database_url("mysql://me@host/faces")
    with pytest.raises(FileNotFoundError, match="faceattr index"):
        IndexStore.open(str(tmp_path / "missing.db"))
    with pytest.raises(ValueError, match="cannot open the index postgresql"):
        IndexStore.open("postgresql://nobody@127.0.0.1:1/none")


# -- query complexity ------------------------------------------------------------------------

FACES = 40
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

leaves = st.builds(
    lambda name, op, value: name if op == "" else f"{name}{op}{value:.3f}",
    st.sampled_from(ATTRIBUTES),
    st.sampled_from(["", ">", "<", ">=", "<="]),
    st.floats(0.0, 1.0),
)


@st.composite
def deep_queries(draw: st.DrawFn, depth: int) -> str:
    """``depth`` levels of ``not`` and parentheses (around ``and``/``or`` with a leaf)."""
    text = draw(leaves)
    for _ in range(depth):
        kind = draw(st.sampled_from(["not", "and", "or"]))
        text = f"not {text}" if kind == "not" else f"({draw(leaves)} {kind} {text})"
    return text


@st.composite
def wide_queries(draw: st.DrawFn, terms: int) -> str:
    """``terms`` leaves joined by ``and`` and ``or``."""
    words = [draw(leaves)]
    for _ in range(terms - 1):
        words += [draw(st.sampled_from(["and", "or", "and not", "or not"])), draw(leaves)]
    return " ".join(words)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def index(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[IndexStore, np.ndarray, np.ndarray]]:
    """An index of FACES random faces on each backend, with their ids and probabilities."""
    if request.param == "sqlite":
        db = str(tmp_path_factory.mktemp("limits") / "faces.db")
    else:
        db = request.getfixturevalue("postgres_module_db")
    rng = np.random.default_rng(16)
    with IndexStore.open(db, create=True) as store:
        store.bind_model(IndexModel("c" * 64, "tiny", CELEBA_SCHEMA))
        faces = [make_face(rng) for _ in range(FACES)]
        store.write_files([FileEntry(str(Path("/photos/a.jpg")), 1, 1, "0" * 64, faces=faces)])
        hits = store.search("", limit=FACES)
        ids = np.array(sorted(hit.face_id for hit in hits))
        by_id = {hit.face_id: hit for hit in hits}
        matrix = np.array([[by_id[i].probabilities[a] for a in ATTRIBUTES] for i in ids])
        yield store, ids, matrix


def check_exact(index: tuple[IndexStore, np.ndarray, np.ndarray], text: str) -> None:
    """The search returns the brute-force matches, with the brute-force margins."""
    store, ids, probabilities = index
    query = parse_query(text, ATTRIBUTES)
    expected = ids[query.mask(probabilities, ATTRIBUTES)]
    hits = store.search(text, limit=FACES)
    assert sorted(hit.face_id for hit in hits) == sorted(expected.tolist()), text
    rows = probabilities[np.searchsorted(ids, [hit.face_id for hit in hits])]
    np.testing.assert_allclose(
        [hit.score for hit in hits], query.score(rows, ATTRIBUTES), atol=1e-9
    )


@SETTINGS
@given(
    text=st.one_of(
        st.integers(0, MAX_DEPTH).flatmap(deep_queries),
        st.integers(1, MAX_TERMS).flatmap(wide_queries),
    )
)
def test_queries_as_deep_or_as_wide_as_allowed_run_on_both_backends(
    index: tuple[IndexStore, np.ndarray, np.ndarray], text: str
) -> None:
    check_exact(index, text)


@pytest.mark.parametrize(
    "text",
    [
        "(" * MAX_DEPTH + " or ".join(ATTRIBUTES[:5]) + ")" * MAX_DEPTH,
        "not " * MAX_DEPTH + "Male",
        " or ".join(ATTRIBUTES[i % 40] for i in range(MAX_TERMS)),
        " and ".join(ATTRIBUTES[i % 40] for i in range(MAX_TERMS)),
    ],
)
def test_the_limits_themselves_run_on_both_backends(
    index: tuple[IndexStore, np.ndarray, np.ndarray], text: str
) -> None:
    check_exact(index, text)


@given(st.integers(MAX_DEPTH + 1, 400).flatmap(deep_queries))
@settings(max_examples=25, deadline=None)
def test_deeper_queries_are_refused_naming_the_limit(text: str) -> None:
    with pytest.raises(QueryError, match=f"nests at most {MAX_DEPTH} parentheses and 'not'"):
        parse_query(text, ATTRIBUTES)


@given(st.integers(MAX_TERMS + 1, 300).flatmap(wide_queries))
@settings(max_examples=25, deadline=None)
def test_wider_queries_are_refused_naming_the_limit(text: str) -> None:
    with pytest.raises(QueryError, match=f"at most {MAX_TERMS} attribute terms"):
        parse_query(text, ATTRIBUTES)


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("not " * 47 + "Male", "nests at most"),
        (" or ".join(["Male"] * 128), "attribute terms"),
        (" and ".join(["Male"] * 128), "attribute terms"),
        ("(" * 329 + "Male" + ")" * 329, "nests at most"),
        ("(" * 5000, "nests at most"),
    ],
)
def test_the_probes_examples_are_refused(text: str, limit: str) -> None:
    with pytest.raises(QueryError, match=limit):
        parse_query(text, ATTRIBUTES)

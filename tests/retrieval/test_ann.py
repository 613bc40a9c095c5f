"""The FAISS index of the embeddings: exact top-k when every inverted list is probed, filtered
similarity search equal to the exact answer on both backends, updates that follow the database
(replaced and pruned faces leave it), and rebuilds after the file is deleted, truncated or left
behind by a killed writer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from faceattr.attributes import ATTRIBUTES
from faceattr.data.schema import CELEBA_SCHEMA
from faceattr.inference.predictor import FacePrediction
from faceattr.retrieval import ann as ann_module
from faceattr.retrieval.ann import AnnIndex, AnnVersion
from faceattr.retrieval.store import FileEntry, IndexModel, IndexStore

MODEL = IndexModel("a" * 64, "tiny", CELEBA_SCHEMA, "/models/tiny")
DIMENSION = 16
VERSION = AnnVersion("uid", 1, MODEL.fingerprint)


def clustered(rng: np.random.Generator, count: int, clusters: int = 12) -> np.ndarray:
    """``count`` unit vectors around ``clusters`` random centres (as face embeddings cluster by
    identity)."""
    centres = rng.normal(size=(clusters, DIMENSION))
    points = centres[rng.integers(clusters, size=count)] + 0.35 * rng.normal(
        size=(count, DIMENSION)
    )
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def exact_top(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(vectors @ query), kind="stable")[:k]]


@pytest.fixture
def small_ivf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inverted files from 100 faces on, so a test index of a few hundred is one."""
    monkeypatch.setattr(ann_module, "EXACT_BELOW", 100)


def test_every_list_probed_gives_the_exact_top_k(small_ivf: None) -> None:
    rng = np.random.default_rng(0)
    vectors = clustered(rng, 2000)
    ids = rng.permutation(10**6)[:2000].astype(np.int64)
    index = AnnIndex.create(VERSION, len(vectors), vectors)
    index.add(ids, vectors)
    assert not index.exact and index.index is not None
    nlist = index.index.nlist
    recall = []
    for query in clustered(rng, 20):
        found, scores = index.search(query, 10, nprobe=nlist)
        np.testing.assert_array_equal(found, exact_top(vectors, ids, query, 10))
        np.testing.assert_allclose(scores, np.sort(vectors @ query)[::-1][:10], atol=1e-5)
        default, _ = index.search(query, 10)
        recall.append(len(set(default) & set(found)) / 10)
    assert np.mean(recall) >= 0.9


def test_removed_faces_leave_the_index_and_a_filter_never_returns_others(small_ivf: None) -> None:
    rng = np.random.default_rng(1)
    vectors = clustered(rng, 500)
    ids = np.arange(1, 501, dtype=np.int64)
    index = AnnIndex.create(VERSION, len(vectors), vectors)
    index.add(ids, vectors)
    index.remove(ids[:100])
    assert index.size == 400
    query = vectors[0]
    found, _ = index.search(query, 400, nprobe=index.index.nlist)
    assert set(found) == set(ids[100:].tolist())
    allowed = ids[rng.random(500) < 0.05]
    filtered, scores = index.search(query, 10, allowed)
    kept = np.isin(ids, allowed) & (ids > 100)
    np.testing.assert_array_equal(filtered, exact_top(vectors[kept], ids[kept], query, 10))
    assert index.search(query, 10, np.zeros(0, np.int64))[0].size == 0
    half = ids[ids % 3 == 0]  # one probed list rarely holds 10 of them: the probe doubles
    widened, _ = index.search(query, 10, half, nprobe=1)
    assert len(widened) == 10 and np.isin(widened, half).all() and np.all(widened > 100)


def face(embedding: np.ndarray, probabilities: np.ndarray) -> FacePrediction:
    return FacePrediction(
        box=(1.0, 2.0, 30.0, 40.0),
        landmarks=((1.0, 1.0),) * 5,
        detection_score=0.9,
        attributes=ATTRIBUTES,
        probabilities=probabilities,
        thresholds=np.full(len(ATTRIBUTES), 0.5, np.float32),
        embedding=embedding,
    )


def entries(rng: np.random.Generator, files: int, first: int = 0) -> list[FileEntry]:
    """``files`` files of one to three faces each, random probabilities, clustered embeddings."""
    found = []
    for number in range(first, first + files):
        count = int(rng.integers(1, 4))
        vectors = clustered(rng, count)
        probabilities = rng.random((count, len(ATTRIBUTES))).astype(np.float32)
        faces = [face(v, p) for v, p in zip(vectors, probabilities, strict=True)]
        found.append(FileEntry(f"/p/{number}.jpg", 1, 1, f"{number:064d}", faces=faces))
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty index location on each backend."""
    if request.param == "sqlite":
        return str(tmp_path / "faces.db")
    return str(request.getfixturevalue("postgres_db"))


@pytest.fixture
def store(db: str, tmp_path: Path) -> Iterator[IndexStore]:
    """A store of 150 files (about 300 faces), written by a writer that followed its index."""
    with IndexStore.open(db, create=True, ann_path=tmp_path / "faces.faiss") as writer:
        writer.bind_model(MODEL)
        writer.follow_ann()
        rng = np.random.default_rng(2)
        for start in range(0, 150, 50):
            writer.write_files(entries(rng, 50, start))
    with reopen(writer) as opened:
        yield opened


def reopen(store: IndexStore) -> IndexStore:
    """Another store of the same database and index file (as another process opens it)."""
    url = store.engine.url.render_as_string(hide_password=False)
    return IndexStore.open(url, ann_path=store.ann_path)


QUERIES = ["", "Smiling", "Smiling and not Eyeglasses", "Bald>0.95", "Male<0.01 and Young>0.99"]


def assert_like_searches_exact(store: IndexStore, probes: np.ndarray) -> None:
    for text in QUERIES:
        for probe in probes:
            for limit in (1, 10):
                approximate = store.search(text, like=probe, limit=limit)
                exact = store.search(text, like=probe, limit=limit, exact=True)
                assert [hit.face_id for hit in approximate] == [hit.face_id for hit in exact], text
                np.testing.assert_allclose(
                    [hit.score for hit in approximate], [hit.score for hit in exact], atol=1e-5
                )


def test_filtered_similarity_search_equals_the_exact_answer(
    store: IndexStore, small_ivf: None
) -> None:
    probes = clustered(np.random.default_rng(3), 4)
    assert_like_searches_exact(store, probes)  # flat: built while EXACT_BELOW was 20,000
    store.ann_path.unlink()
    with reopen(store) as reader:
        assert_like_searches_exact(reader, probes)  # rebuilt as an inverted file
    loaded = AnnIndex.load(store.ann_path)
    assert loaded is not None and not loaded.exact
    assert loaded.version == store.version()


def test_a_followed_index_holds_exactly_the_faces_of_the_database(store: IndexStore) -> None:
    assert not (store.ann_path.parent / f"{store.ann_path.name}.tmp").exists()
    saved = AnnIndex.load(store.ann_path)
    assert saved is not None and saved.version == store.version()
    with reopen(store) as writer:
        index = writer.follow_ann()
        assert index is not None
        writer.write_files(entries(np.random.default_rng(4), 20, first=10))  # replaces 20 files
        writer.remove_files([f"/p/{n}.jpg" for n in range(100, 120)])
        held = index.search(np.ones(DIMENSION, np.float32), 10_000)[0]
        in_database = {hit.face_id for hit in writer.search("", limit=10_000)}
        assert set(held.tolist()) == in_database
    saved = AnnIndex.load(store.ann_path)
    assert saved is not None and saved.version == store.version() and saved.size == len(held)


def test_a_missing_truncated_or_stale_index_is_rebuilt(store: IndexStore) -> None:
    probes = clustered(np.random.default_rng(5), 2)

    def searches_exact() -> bool:
        with reopen(store) as reader:
            for probe in probes:
                exact = reader.search("Smiling", like=probe, limit=5, exact=True)
                found = reader.search("Smiling", like=probe, limit=5)
                if [h.face_id for h in found] != [h.face_id for h in exact]:
                    return False
        return True

    store.ann_path.unlink()
    assert searches_exact() and store.ann_path.is_file()

    store.ann_path.write_bytes(store.ann_path.read_bytes()[:100])  # a torn file
    assert searches_exact()

    # A writer killed after committing but before saving its index: the file is behind.
    writer = reopen(store)
    writer.follow_ann()
    writer.remove_files(["/p/0.jpg", "/p/1.jpg"])
    writer.write_files(entries(np.random.default_rng(6), 3, first=500))
    writer.engine.dispose()  # no close(): the index is not saved
    stale = AnnIndex.load(store.ann_path)
    version = store.version()
    assert stale is not None and version is not None
    assert stale.version.generation < version.generation
    assert searches_exact()
    rebuilt = AnnIndex.load(store.ann_path)
    assert rebuilt is not None and rebuilt.version == store.version()

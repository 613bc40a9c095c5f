"""Index a small real collection into SQLite with the tiny real model, then search it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image

from faceattr.inference.predictor import Predictor
from faceattr.retrieval.indexer import IndexSummary, index_paths
from faceattr.retrieval.store import IndexStore

Indexed = tuple[IndexStore, IndexSummary]


@pytest.fixture(scope="module")
def indexed(
    predictor: Predictor, collection: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Indexed]:
    """The collection indexed into a fresh SQLite file, 4 files per transaction."""
    db = tmp_path_factory.mktemp("index") / "faces.db"
    store = IndexStore.open(str(db), create=True)
    summary = index_paths(store, predictor, collection, batch_size=4, progress=False, workers=0)
    yield store, summary
    store.close()


def test_every_file_is_recorded_and_failures_reported(
    indexed: Indexed, collection: list[Path]
) -> None:
    store, summary = indexed
    reasons = dict(summary.failures)
    corrupt, blank = (str(p.resolve()) for p in collection[-2:])
    assert reasons[corrupt].startswith("unreadable")
    assert reasons[blank] == "no face found"
    assert summary.added + summary.failed == len(collection)
    assert summary.added >= len(collection) - 3
    assert summary.skipped == 0
    stats = store.stats()
    assert (stats.files, stats.failed, stats.faces) == (
        len(collection),
        summary.failed,
        summary.faces,
    )
    assert stats.model_name == "facenet-mtl"
    assert store.is_indexed_path(collection[0])
    assert not store.is_indexed_path(collection[0].with_name("elsewhere.jpg"))
    with store.engine.connect() as connection:
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"


def test_search_returns_exactly_the_faces_that_satisfy_the_query(
    indexed: Indexed, check_search_exact: Callable[[IndexStore], None]
) -> None:
    check_search_exact(indexed[0])


def test_like_ranks_the_query_image_first(
    indexed: Indexed, predictor: Predictor, collection: list[Path]
) -> None:
    store, _ = indexed
    for path in collection[:3]:
        embedding = predictor.embed(path)
        assert embedding is not None
        hits = store.search("", like=embedding, limit=4)
        assert hits[0].path == str(path.resolve())
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    own = store.search("", like=embedding, limit=1)[0]
    male = own.probabilities["Male"]
    excluding = store.search(f"Male<{male} or Male>{male}", like=embedding, limit=100)
    assert excluding and all(hit.face_id != own.face_id for hit in excluding)


def test_face_record_matches_the_search_hit(indexed: Indexed) -> None:
    store, _ = indexed
    hit = store.search("", limit=1)[0]
    record = store.face(hit.face_id)
    assert record is not None
    assert (record.path, record.box, record.probabilities) == (hit.path, hit.box, hit.probabilities)
    assert len(record.landmarks) == 5
    assert np.linalg.norm(record.embedding) == pytest.approx(1.0, abs=1e-4)
    assert store.face(10**9) is None


def test_reindexing_skips_unchanged_files_and_redoes_changed_ones(
    predictor: Predictor, collection: list[Path], tmp_path: Path
) -> None:
    files = [Path(shutil.copy(p, tmp_path)) for p in [*collection[:3], collection[-2]]]
    with IndexStore.open(str(tmp_path / "faces.db"), create=True) as store:
        first = index_paths(store, predictor, files, batch_size=2, progress=False, workers=0)
        assert (first.added, first.failed, first.skipped) == (3, 1, 0)
        again = index_paths(store, predictor, files, batch_size=2, progress=False, workers=0)
        assert (again.added, again.failed, again.skipped, again.faces) == (0, 0, 4, 0)

        stat = files[0].stat()
        os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        touched = index_paths(store, predictor, files, progress=False, workers=0)
        assert (touched.added, touched.skipped) == (0, 4)
        key = str(files[0].resolve())
        assert store.file_states()[key].mtime_ns == stat.st_mtime_ns + 10**9

        old_faces = {h.face_id for h in store.search("", limit=100) if h.path == str(files[1])}
        Image.open(files[1]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(files[1], quality=90)
        changed = index_paths(store, predictor, files, progress=False, workers=0)
        assert (changed.added, changed.skipped) == (1, 3)
        new_faces = {h.face_id for h in store.search("", limit=100) if h.path == str(files[1])}
        assert new_faces and not new_faces & old_faces
        assert store.stats().files == 4


def test_prune_forgets_deleted_files_under_the_indexed_folders_only(
    predictor: Predictor, collection: list[Path], tmp_path: Path
) -> None:
    inside, outside = tmp_path / "album", tmp_path / "other"
    inside.mkdir(), outside.mkdir()
    kept, deleted = (Path(shutil.copy(p, inside)) for p in collection[:2])
    elsewhere = Path(shutil.copy(collection[2], outside))
    with IndexStore.open(str(tmp_path / "faces.db"), create=True) as store:
        index_paths(store, predictor, [kept, deleted, elsewhere], progress=False, workers=0)
        deleted.unlink()
        elsewhere.unlink()
        plain = index_paths(store, predictor, [kept], progress=False, workers=0)
        assert plain.removed == 0 and store.stats().files == 3
        pruned = index_paths(store, predictor, [kept], progress=False, workers=0, prune=[inside])
        assert (pruned.removed, pruned.skipped) == (1, 1)
        paths = set(store.file_states())
        assert paths == {str(kept.resolve()), str(elsewhere.resolve())}
        assert {hit.path for hit in store.search("", limit=100)} <= paths


@pytest.mark.slow
def test_two_cpu_worker_processes_index_the_same_faces(
    indexed: Indexed, predictor: Predictor, collection: list[Path], tmp_path: Path
) -> None:
    reference = {hit.path: hit for hit in indexed[0].search("", limit=100)}
    with IndexStore.open(str(tmp_path / "faces.db"), create=True) as store:
        summary = index_paths(
            store, predictor, collection[:4], devices=2, batch_size=2, progress=False, workers=0
        )
        assert summary.added == sum(str(p.resolve()) in reference for p in collection[:4])
        for hit in store.search("", limit=100):
            expected = reference[hit.path]
            assert hit.box == expected.box
            for name, p in hit.probabilities.items():
                assert p == pytest.approx(expected.probabilities[name], abs=1e-5)

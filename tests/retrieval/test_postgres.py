"""The index on a real PostgreSQL server ($FACEATTR_TEST_POSTGRES, or one that
scripts/start_test_postgres.sh starts): index, exact search, incremental re-index, like."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from faceattr.inference.predictor import Predictor
from faceattr.retrieval.indexer import index_paths
from faceattr.retrieval.store import IndexStore


def test_index_and_search_on_postgresql(
    postgres_db: str,
    predictor: Predictor,
    collection: list[Path],
    check_search_exact: Callable[[IndexStore], None],
) -> None:
    with IndexStore.open(postgres_db) as store:
        first = index_paths(store, predictor, collection, batch_size=4, progress=False, workers=0)
        assert first.added + first.failed == len(collection) and first.failed >= 2
        assert store.stats().faces == first.faces
        check_search_exact(store)

        again = index_paths(store, predictor, collection, progress=False, workers=0)
        assert (again.added, again.skipped, again.failed) == (0, len(collection), 0)

        embedding = predictor.embed(collection[0])
        assert embedding is not None
        best = store.search("", like=embedding, limit=2)[0]
        assert best.path == str(collection[0].resolve())
        assert best.score == pytest.approx(1.0, abs=1e-5)
        assert store.is_indexed_path(collection[0])

    with IndexStore.open(postgres_db) as reopened:
        assert reopened.stats().files == len(collection)

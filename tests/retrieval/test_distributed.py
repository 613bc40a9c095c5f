"""Indexing on a local two-CPU Ray cluster: the same faces and probabilities as local indexing,
and a Ray worker killed mid-run loses and duplicates no face: Ray restarts it and retries its
chunk, and when it keeps dying the run stops, keeps what it committed and resumes."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
import ray
from ray import cloudpickle

from faceattr.inference.predictor import ImagePrediction, Predictor
from faceattr.retrieval import distributed
from faceattr.retrieval.distributed import PredictionActor, predict_on_ray
from faceattr.retrieval.indexer import WorkerFailure, index_paths
from faceattr.retrieval.store import IndexStore, SearchHit

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the dying actors below


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A local Ray cluster of two CPUs (two actors)."""
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(
    predictor: Predictor, collection: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[SearchHit]]:
    """The faces of the collection indexed locally, by path."""
    db = tmp_path_factory.mktemp("local") / "faces.db"
    with IndexStore.open(str(db), create=True) as store:
        index_paths(store, predictor, collection, batch_size=2, progress=False, workers=0)
        return faces_by_path(store)


def faces_by_path(store: IndexStore) -> dict[str, list[SearchHit]]:
    found: dict[str, list[SearchHit]] = {}
    for hit in sorted(store.search("", limit=1000), key=lambda hit: hit.face_id):
        found.setdefault(hit.path, []).append(hit)
    return found


def assert_same_faces(store: IndexStore, reference: dict[str, list[SearchHit]]) -> None:
    """Every file has exactly the reference's faces (boxes, probabilities within 1e-5), and the
    FAISS index holds every face once."""
    found = faces_by_path(store)
    assert found.keys() == reference.keys()
    for path, hits in found.items():
        assert [hit.box for hit in hits] == [hit.box for hit in reference[path]], path
        for hit, expected in zip(hits, reference[path], strict=True):
            for name, p in hit.probabilities.items():
                assert p == pytest.approx(expected.probabilities[name], abs=1e-5)
    ann = store.follow_ann()
    assert ann is not None and ann.size == sum(len(hits) for hits in found.values())


def dying_actor(marker: Path, at_call: int, once: bool) -> type[PredictionActor]:
    """An actor whose process exits on its ``at_call``-th chunk: only the first time any actor
    gets there (``once``, a ``marker`` file remembers), or in every life."""

    class DyingActor(PredictionActor):
        calls = 0

        def predict(self, paths: list[str]) -> list[ImagePrediction]:
            self.calls += 1
            if self.calls == at_call and not (once and marker.exists()):
                marker.touch()
                os._exit(1)
            return super().predict(paths)

    return DyingActor


def test_ray_indexing_gives_the_faces_and_probabilities_of_local_indexing(
    cluster: None,
    predictor: Predictor,
    collection: list[Path],
    reference: dict[str, list[SearchHit]],
    tmp_path: Path,
) -> None:
    with IndexStore.open(str(tmp_path / "faces.db"), create=True) as store:
        summary = index_paths(
            store, predictor, collection, batch_size=2, progress=False, ray_address="auto"
        )
        assert summary.added + summary.failed == len(collection)
        assert_same_faces(store, reference)
    with pytest.raises(ValueError, match="exclude each other"):
        index_paths(store, predictor, collection, devices=2, ray_address="auto")


def test_a_killed_ray_worker_loses_and_duplicates_no_face(
    cluster: None,
    predictor: Predictor,
    collection: list[Path],
    reference: dict[str, list[SearchHit]],
    tmp_path: Path,
) -> None:
    paths = [str(p.resolve()) for p in collection]
    once = dying_actor(tmp_path / "died", at_call=2, once=True)
    chunks = list(predict_on_ray(predictor, paths, "auto", 2, 0, False, once, max_restarts=1))
    assert (tmp_path / "died").exists()  # an actor died, was restarted, its chunk retried
    assert sorted(str(p.path) for chunk in chunks for p in chunk) == sorted(paths)

    always = dying_actor(tmp_path / "marker", at_call=2, once=False)
    failing = partial(distributed.predict_on_ray, actor_class=always, max_restarts=0)
    with IndexStore.open(str(tmp_path / "faces.db"), create=True) as store:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(distributed, "predict_on_ray", failing)
            with pytest.raises(WorkerFailure, match="Ray worker failed"):
                index_paths(
                    store, predictor, collection, batch_size=2, progress=False, ray_address="auto"
                )
        committed = store.stats().files
        assert 0 < committed < len(collection)
        resumed = index_paths(
            store, predictor, collection, batch_size=2, progress=False, ray_address="auto"
        )
        assert resumed.skipped == committed
        assert_same_faces(store, reference)


def test_predict_on_ray_writes_parquet_shards_and_a_rerun_skips_them(
    cluster: None,
    predictor: Predictor,
    collection: list[Path],
    reference: dict[str, list[SearchHit]],
    tmp_path: Path,
) -> None:
    import pyarrow.parquet as pq

    from faceattr.cli.predict import Format, predict_shards

    files = [p.resolve() for p in collection]
    out = tmp_path / "shards"
    assert predict_shards(predictor, files, out, Format.PARQUET, "auto", 4, False) == (3, 0)
    table = pq.read_table(out).to_pandas()
    faces = table[table["error"] == ""]
    assert len(faces) == sum(len(hits) for hits in reference.values())
    assert set(table.loc[table["error"] != "", "path"]) == {str(p) for p in files[-2:]}
    for row in faces.itertuples():
        expected = reference[row.path][int(row.face) - 1]
        assert row.Smiling == pytest.approx(expected.probabilities["Smiling"], abs=1e-5)
    assert predict_shards(predictor, files, out, Format.PARQUET, "auto", 4, False) == (0, 3)

"""Fixtures of the server tests: the tiny real model's predictor, an index of a few real CelebA
photos built with ``index_paths``, and the app over both; the app over a model of every
attribute kind."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from faceattr.data.record import FaceDataset
from faceattr.inference.predictor import Predictor
from faceattr.retrieval.indexer import index_paths
from faceattr.retrieval.store import IndexStore
from faceattr.server import ServerSettings, create_app

PHOTOS = 6


@pytest.fixture(scope="session")
def photos(real_celeba: FaceDataset, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Copies of the first present real test-split photos."""
    folder = tmp_path_factory.mktemp("photos")
    rows = [i for i in real_celeba.split_indices("test") if real_celeba.present[i]][:PHOTOS]
    return [Path(shutil.copy(real_celeba.image_path(i), folder)) for i in rows]


@pytest.fixture(scope="session")
def index_db(
    predictor: Predictor, photos: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> str:
    """An SQLite index of ``photos`` made by the tiny model (one face each)."""
    db = str(tmp_path_factory.mktemp("index") / "faces.db")
    with IndexStore.open(db, create=True) as store:
        summary = index_paths(store, predictor, photos, workers=0, progress=False)
    assert summary.faces == len(photos), summary
    return db


@pytest.fixture(scope="session")
def upload_limit() -> int:
    """The app's upload limit in bytes: above any CelebA photo (about 10 KB), far below the
    default, so "too large" costs little."""
    return 200_000


@pytest.fixture(scope="session")
def app(predictor: Predictor, index_db: str, upload_limit: int) -> Iterator[FastAPI]:
    """The app over the predictor and the index, with a small upload limit."""
    with IndexStore.open(index_db) as store:
        yield create_app(predictor, store, ServerSettings(max_upload_bytes=upload_limit))


@pytest.fixture(scope="session")
def kinds_app(kinds_model: Path) -> FastAPI:
    """The app over the model with binary, categorical and numeric attributes (no index)."""
    return create_app(Predictor.from_checkpoint(kinds_model, device="cpu"), None)


@pytest.fixture
def client(app: FastAPI) -> TestClient:
    """An HTTP client of ``app`` (no server process)."""
    return TestClient(app)

"""Fixtures of the retrieval tests: a predictor of the tiny real model, a small photo collection
(real CelebA faces, a corrupt file, a faceless image), a throwaway PostgreSQL server, and the
check that searches return exactly the brute-force matches."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image

from faceattr.data.record import FaceDataset
from faceattr.retrieval.query import parse_query
from faceattr.retrieval.store import IndexStore

REPO = Path(__file__).resolve().parents[2]
START_POSTGRES = REPO / "scripts" / "start_test_postgres.sh"
REAL_FACES = 10


@pytest.fixture(scope="session")
def collection(real_celeba: FaceDataset, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """12 files: 10 real test-split faces, ``corrupt.jpg`` (not an image) and ``blank.png``
    (no face)."""
    folder = tmp_path_factory.mktemp("photos")
    rows = [i for i in real_celeba.split_indices("test") if real_celeba.present[i]][:REAL_FACES]
    paths = [Path(shutil.copy(real_celeba.image_path(i), folder)) for i in rows]
    corrupt = folder / "corrupt.jpg"
    corrupt.write_bytes(b"this is not a JPEG file")
    blank = folder / "blank.png"
    Image.new("RGB", (120, 160), (128, 140, 150)).save(blank)
    return [*paths, corrupt, blank]


def stored_probabilities(store: IndexStore) -> tuple[np.ndarray, np.ndarray]:
    """Face ids and the (N, K) probabilities of every face the index holds."""
    hits = store.search("", limit=1_000_000)
    ids = np.array([hit.face_id for hit in hits])
    matrix = np.array([[hit.probabilities[a] for a in store.attributes] for hit in hits])
    return ids, matrix


@pytest.fixture(scope="session")
def check_search_exact() -> Callable[[IndexStore], None]:
    """``check(store)``: for several queries (thresholds at the stored medians, so each splits
    the faces; ``and``/``or``/``not``/parentheses; ``min_prob``), the search returns exactly the
    faces whose stored probabilities satisfy the query, best margin first."""

    def check(store: IndexStore) -> None:
        ids, probabilities = stored_probabilities(store)
        assert len(ids) >= 5
        attributes = store.attributes
        m = {a: f"{np.median(probabilities[:, k]):.6f}" for k, a in enumerate(attributes)}
        queries = [
            (f"Male>{m['Male']}", 0.5),
            (f"not Male>{m['Male']}", 0.5),
            (f"Smiling<={m['Smiling']} or Young>{m['Young']}", 0.5),
            (
                f"(Eyeglasses>={m['Eyeglasses']} or Bald<{m['Bald']}) "
                f"and not (Smiling>{m['Smiling']} or Wearing_Hat<{m['Wearing_Hat']})",
                0.5,
            ),
            ("Eyeglasses and Wearing_Hat and not Male", 0.5),
            ("not Attractive or Young", float(m["Young"])),
            ("", 0.5),
        ]
        nontrivial = 0
        for text, min_prob in queries:
            query = parse_query(text, attributes, min_prob)
            expected = set(ids[query.mask(probabilities, attributes)].tolist())
            hits = store.search(text, min_prob=min_prob, limit=1_000_000)
            assert {hit.face_id for hit in hits} == expected, text
            assert len(hits) == len(expected)
            scores = np.array([hit.score for hit in hits])
            assert np.all(np.diff(scores) <= 1e-12), text
            rows = probabilities[np.searchsorted(ids, [hit.face_id for hit in hits])]
            np.testing.assert_allclose(scores, query.score(rows, attributes), atol=1e-9)
            nontrivial += 0 < len(expected) < len(ids)
            if hits:
                assert store.search(text, min_prob=min_prob, limit=1)[0] == hits[0]
        assert nontrivial >= 3

    return check


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server: ``$FACEATTR_TEST_POSTGRES``, or a throwaway cluster
    started by ``scripts/start_test_postgres.sh`` (skipped, saying why, without the binaries)."""
    url = os.environ.get("FACEATTR_TEST_POSTGRES")
    if url:
        yield url
        return
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) and not shutil.which("initdb"):
        pytest.skip(
            "no PostgreSQL server binaries (apt install postgresql) and no FACEATTR_TEST_POSTGRES"
        )
    folder = Path(tempfile.mkdtemp(prefix="faceattr-pg-"))
    started = subprocess.run(
        ["bash", str(START_POSTGRES), str(folder), str(free_port())],
        capture_output=True,
        text=True,
        check=False,
    )
    if started.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.fail(f"start_test_postgres.sh failed: {started.stderr}")
    try:
        yield started.stdout.strip()
    finally:
        subprocess.run(["bash", str(START_POSTGRES), "--stop", str(folder)], check=False)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new, empty database on ``server`` (dropped on exit), as a ``postgresql://`` URL."""
    name = f"faceattr_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        sa.make_url(server).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_db(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database on the server (dropped afterwards), as a ``postgresql://`` URL."""
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="module")
def postgres_module_db(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database shared by the tests of one module (hypothesis runs many examples
    against one index)."""
    with fresh_database(postgres_server) as url:
        yield url

"""The attribute index: files, faces and their attribute probabilities in SQLite or PostgreSQL.

Three SQLAlchemy Core tables: ``meta`` (which model made the index, its attribute schema),
``files`` (one row per image file: absolute path, size, mtime_ns, sha256, status, error, face
count) and ``faces`` (box, landmarks, detection score, the model's embedding as float32 bytes and
the attributes' columns, each indexed, so a :class:`~faceattr.retrieval.query.Query` compiles to
a SQL ``WHERE`` clause and its ranking margin to an ``ORDER BY``): a binary attribute's
probability ``p_<name>``; a numeric one's predicted value in its unit ``v_<name>``; a categorical
one's predicted class name ``c_<name>`` and that class's probability ``p_<name>``. The ``faces``
table follows the model's attributes, so it is created when the first model is bound to the
index.

SQLite (a path, or ``sqlite:///path``) runs in WAL mode, so searches read while an indexer writes;
``postgresql://user@host:port/db`` goes through psycopg 3. Every :meth:`IndexStore.write_files`
call is one transaction: a crash loses at most the batch being written.

``like`` searches rank the matching faces by cosine similarity through the FAISS index of
:mod:`faceattr.retrieval.ann`, kept in a file beside the database (SQLite: ``faces.db.faiss``;
PostgreSQL: ``ann_path``, default ``$FACEATTR_CACHE/ann/<host>-<port>-<db>-<hash>.faiss``). Every
write transaction adds one to the ``generation`` in ``meta``; the index file records the
generation it mirrors, and an index that is missing, unreadable or behind the database is rebuilt
from it before a search. A store that :meth:`IndexStore.follow_ann` keeps its index up to date as
it writes (the indexer), saving it every :data:`ANN_SAVE_SECONDS` and on close. ``exact`` searches
rank by cosine in numpy over the embeddings streamed from the database.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url
from tqdm import tqdm

from faceattr.data.record import cache_home
from faceattr.data.schema import Schema
from faceattr.inference.values import CategoricalValue, NumericValue
from faceattr.retrieval.ann import AnnIndex, AnnVersion, training_size
from faceattr.retrieval.query import Query, QueryError, parse_query

if TYPE_CHECKING:
    from faceattr.inference.predictor import FacePrediction

SCHEMA_VERSION = "1"
STATUS_OK = "ok"
STATUS_FAILED = "failed"
PROBABILITY_PREFIX = "p_"
VALUE_PREFIX = "v_"
CLASS_PREFIX = "c_"
BOX_COLUMNS = ("box_x", "box_y", "box_w", "box_h")
GENERATION = "generation"
ANN_SAVE_SECONDS = 300.0
"""How often a store that follows its FAISS index writes it while writing the database."""
EMBEDDING_CHUNK = 8192
"""Embeddings read from the database at a time (exact searches, rebuilding the FAISS index)."""


class IndexModelError(ValueError):
    """The index was built by another model than the one asked to extend it."""


@dataclass(frozen=True)
class IndexModel:
    """The model an index belongs to: its ``fingerprint`` (hash of description and weights),
    registry ``name``, attribute ``schema`` (the columns of each attribute follow its kind) and
    where it was loaded from (``source``, for ``like`` searches; may be empty)."""

    fingerprint: str
    name: str
    schema: Schema
    source: str = ""

    @property
    def attributes(self) -> tuple[str, ...]:
        """The attribute names, in the model's order."""
        return self.schema.names

    def describe(self) -> str:
        """``name (fingerprint prefix)`` for messages."""
        return f"{self.name} ({self.fingerprint[:12]})"


@dataclass(frozen=True)
class FileState:
    """What the index knows of one file."""

    path: str
    size: int
    mtime_ns: int
    sha256: str
    status: str
    faces: int


@dataclass(frozen=True)
class FileEntry:
    """One file's indexing result: ``faces`` found (status ok), or the ``error`` (status failed)."""

    path: str
    size: int
    mtime_ns: int
    sha256: str
    faces: Sequence[FacePrediction] = ()
    error: str | None = None

    @property
    def status(self) -> str:
        """``ok`` or ``failed``."""
        return STATUS_FAILED if self.error is not None else STATUS_OK


@dataclass(frozen=True)
class SearchHit:
    """One face found by a search; ``score`` is the query's margin, or the cosine similarity to
    the ``like`` embedding; ``probabilities`` and ``values`` as :class:`FaceRecord`'s."""

    face_id: int
    path: str
    box: tuple[float, float, float, float]
    score: float
    probabilities: dict[str, float]
    values: dict[str, float | str] = field(default_factory=dict)


@dataclass(frozen=True)
class FaceRecord:
    """Everything the index holds about one face."""

    face_id: int
    path: str
    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    detection_score: float
    probabilities: dict[str, float]
    """P(present) of each binary attribute, P(predicted class) of each categorical one."""
    embedding: np.ndarray = field(repr=False)
    values: dict[str, float | str] = field(default_factory=dict)
    """The predicted value of each numeric attribute (in its unit), the predicted class name of
    each categorical one."""


@dataclass(frozen=True)
class IndexStats:
    """Counts of the index: ``files`` (``failed`` of them unreadable or faceless), ``faces``;
    ``model`` is the fingerprint of the model that made it (None while empty)."""

    files: int
    failed: int
    faces: int
    model: str | None
    model_name: str | None


def database_url(db: str) -> sa.URL:
    """The SQLAlchemy URL of ``db``: a file path (SQLite), ``sqlite:///...`` or
    ``postgresql://...`` (served by psycopg 3)."""
    if "://" not in db:
        return sa.URL.create("sqlite", database=str(Path(db).expanduser().resolve()))
    url = make_url(db)
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ValueError(f"unsupported index database {db!r}: use a file path or postgresql://")
    return url


def default_ann_path(url: sa.URL) -> Path:
    """Where the FAISS index of the database ``url`` lives: beside a SQLite file (``.faiss``
    appended to its name), else ``$FACEATTR_CACHE/ann/`` named after the server and database."""
    if url.get_backend_name() == "sqlite":
        return Path(f"{url.database}.faiss")
    where = url.render_as_string(hide_password=True)
    digest = hashlib.sha256(where.encode()).hexdigest()[:8]
    return (
        cache_home()
        / "ann"
        / f"{url.host or 'local'}-{url.port or 5432}-{url.database}-{digest}.faiss"
    )


def _file_values(entry: FileEntry) -> dict[str, Any]:
    """The ``files`` columns of ``entry`` but its path."""
    return {
        "size": entry.size,
        "mtime_ns": entry.mtime_ns,
        "sha256": entry.sha256,
        "status": entry.status,
        "error": entry.error,
        "faces": len(entry.faces),
    }


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _fixed_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    meta = sa.Table(
        "meta",
        metadata,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    files = sa.Table(
        "files",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False, unique=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("mtime_ns", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("faces", sa.Integer, nullable=False),
    )
    return meta, files


def _attribute_columns(schema: Schema) -> list[sa.Column[Any]]:
    """The ``faces`` columns of ``schema``'s attributes (see the module docstring)."""
    columns: list[sa.Column[Any]] = []
    for attribute in schema.attributes:
        if attribute.kind == "numeric":
            columns.append(sa.Column(VALUE_PREFIX + attribute.name, sa.Double, nullable=False))
            continue
        if attribute.kind == "categorical":
            columns.append(sa.Column(CLASS_PREFIX + attribute.name, sa.Text, nullable=False))
        columns.append(sa.Column(PROBABILITY_PREFIX + attribute.name, sa.Double, nullable=False))
    return columns


def _faces_table(metadata: sa.MetaData, schema: Schema) -> sa.Table:
    columns = _attribute_columns(schema)
    table = sa.Table(
        "faces",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("file_id", sa.ForeignKey("files.id", ondelete="CASCADE"), nullable=False),
        *(sa.Column(name, sa.Double, nullable=False) for name in BOX_COLUMNS),
        sa.Column("landmarks", sa.JSON, nullable=False),
        sa.Column("detection_score", sa.Double, nullable=False),
        sa.Column("embedding", sa.LargeBinary, nullable=False),
        *columns,
    )
    sa.Index("ix_faces_file_id", table.c.file_id)
    for column in columns:
        sa.Index(f"ix_faces_{column.name}", column)
    return table


class IndexStore:
    """An open attribute index; see the module docstring. Use :meth:`open`."""

    def __init__(self, engine: Engine, ann_path: Path) -> None:
        self.engine = engine
        self.ann_path = ann_path
        self.metadata = sa.MetaData()
        self.meta, self.files = _fixed_tables(self.metadata)
        self.metadata.create_all(engine)
        self.model = self._read_model()
        self.faces = None if self.model is None else self._create_faces(self.model.schema)
        self._ann: AnnIndex | None = None
        self._ann_lock = threading.RLock()
        self._following = False
        self._unsaved_since: float | None = None  # when the index first differed from its file

    @classmethod
    def open(cls, db: str, create: bool = False, ann_path: Path | None = None) -> IndexStore:
        """Open the index at ``db`` (a path or ``sqlite:///path``: SQLite in WAL mode;
        ``postgresql://user@host:port/db``). A missing SQLite file is created only with
        ``create``; an unreachable server is a `ValueError` naming it. ``ann_path``: the FAISS
        index file (default :func:`default_ann_path`)."""
        url = database_url(db)
        if url.get_backend_name() == "sqlite":
            path = Path(url.database or "")
            if not create and not path.is_file():
                raise FileNotFoundError(f"no index at {path}; build one with `faceattr index`")
            path.parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": 60})
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = sa.create_engine(url, pool_pre_ping=True)
        try:
            return cls(engine, ann_path or default_ann_path(url))
        except sa.exc.OperationalError as error:
            engine.dispose()
            where = url.render_as_string(hide_password=True)
            raise ValueError(f"cannot open the index {where}: {error.orig}") from None

    @property
    def attributes(self) -> tuple[str, ...]:
        """The indexed attributes (empty while no model is bound)."""
        return () if self.model is None else self.model.attributes

    @property
    def schema(self) -> Schema | None:
        """The indexed attributes with their kinds (None while no model is bound)."""
        return None if self.model is None else self.model.schema

    def close(self) -> None:
        """Save the FAISS index if this store changed it, and release the database connections."""
        with self._ann_lock:
            if self._ann is not None and self._unsaved_since is not None:
                self._save_ann(self._ann)
        self.engine.dispose()

    def __enter__(self) -> IndexStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------

    def bind_model(self, model: IndexModel, reindex: bool = False) -> None:
        """Make ``model`` the index's model. An index made by another model refuses with
        :class:`IndexModelError`, unless ``reindex``, which empties it first."""
        self._follow_model()
        if self.model is not None and self.model.fingerprint == model.fingerprint:
            return
        if self.model is not None and not reindex:
            raise IndexModelError(
                f"this index was built with model {self.model.describe()}, not "
                f"{model.describe()}: use the same model, or --reindex to rebuild it"
            )
        with self.engine.begin() as connection:
            generation = self._bump_generation(connection) + 1
            if self.faces is not None:
                self.faces.drop(connection)
                self.metadata.remove(self.faces)
            connection.execute(self.files.delete())
            connection.execute(self.meta.delete())
            values = {
                "schema": SCHEMA_VERSION,
                "model": model.fingerprint,
                "model_name": model.name,
                "attributes": json.dumps(list(model.attributes)),
                "attribute_schema": json.dumps(model.schema.to_json()),
                "model_source": model.source,
                "uid": uuid.uuid4().hex,
                GENERATION: str(generation),
            }
            connection.execute(
                self.meta.insert(), [{"key": k, "value": v} for k, v in values.items()]
            )
        self.faces = self._create_faces(model.schema)
        self.model = model
        with self._ann_lock:
            self._ann = None

    def file_states(self) -> dict[str, FileState]:
        """Every indexed file by path."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(self.files)).mappings()
            return {
                row["path"]: FileState(
                    row["path"],
                    row["size"],
                    row["mtime_ns"],
                    row["sha256"],
                    row["status"],
                    row["faces"],
                )
                for row in rows
            }

    def update_stats(self, states: Sequence[FileState]) -> None:
        """Record new sizes and mtimes of files whose content (sha256) did not change."""
        if not states:
            return
        statement = (
            self.files.update()
            .where(self.files.c.path == sa.bindparam("b_path"))
            .values(size=sa.bindparam("b_size"), mtime_ns=sa.bindparam("b_mtime"))
        )
        with self.engine.begin() as connection:
            connection.execute(
                statement,
                [{"b_path": s.path, "b_size": s.size, "b_mtime": s.mtime_ns} for s in states],
            )

    def write_files(self, entries: Sequence[FileEntry]) -> None:
        """Add or replace ``entries`` (their old faces go) in one transaction (a few statements
        per call, whatever its size; the last entry of a repeated path wins)."""
        faces = self._require_faces()
        latest = {entry.path: entry for entry in entries}
        if not latest:
            return
        removed: list[int] = []
        added: list[int] = []
        with self.engine.begin() as connection:
            before = self._bump_generation(connection)
            ids = self._file_ids(connection, list(latest))
            if ids:
                removed = self._delete_faces(connection, list(ids.values()))
                connection.execute(
                    self.files.update().where(self.files.c.id == sa.bindparam("b_id")),
                    [{"b_id": ids[path], **_file_values(latest[path])} for path in ids],
                )
            new = [entry for path, entry in latest.items() if path not in ids]
            if new:
                rows = [{"path": entry.path, **_file_values(entry)} for entry in new]
                connection.execute(self.files.insert(), rows)
                ids = self._file_ids(connection, list(latest))
            face_rows = [
                self._face_row(ids[entry.path], face)
                for entry in latest.values()
                for face in entry.faces
            ]
            if face_rows:
                statement = faces.insert().returning(faces.c.id, sort_by_parameter_order=True)
                added = list(connection.execute(statement, face_rows).scalars())
        if face_rows:
            vectors = np.stack([np.frombuffer(row["embedding"], np.float32) for row in face_rows])
        else:
            vectors = np.zeros((0, 0), np.float32)
        self._ann_follow(before, removed, np.array(added, np.int64), vectors)

    def remove_files(self, paths: Sequence[str]) -> int:
        """Forget ``paths`` and their faces in one transaction; the number of files removed."""
        if not paths:
            return 0
        self._require_faces()
        with self.engine.begin() as connection:
            ids = list(self._file_ids(connection, list(paths)).values())
            if not ids:
                return 0
            before = self._bump_generation(connection)
            removed = self._delete_faces(connection, ids)
            connection.execute(self.files.delete().where(self.files.c.id.in_(ids)))
        self._ann_follow(before, removed, np.zeros(0, np.int64), np.zeros((0, 0), np.float32))
        return len(ids)

    def _delete_faces(self, connection: Connection, file_ids: list[int]) -> list[int]:
        """Delete the faces of ``file_ids``; their ids."""
        faces = self._require_faces()
        statement = faces.delete().where(faces.c.file_id.in_(file_ids)).returning(faces.c.id)
        return list(connection.execute(statement).scalars())

    def _bump_generation(self, connection: Connection) -> int:
        """Add one to the database's write generation (in the caller's transaction); the
        generation before."""
        meta = self.meta
        bumped = sa.cast(sa.cast(meta.c.value, sa.BigInteger) + 1, sa.Text)
        statement = (
            meta.update()
            .where(meta.c.key == GENERATION)
            .values(value=bumped)
            .returning(meta.c.value)
        )
        after = connection.execute(statement).scalar()
        if after is None:
            connection.execute(meta.insert().values(key=GENERATION, value="1"))
            return 0
        return int(after) - 1

    # -- the FAISS index ---------------------------------------------------------------------

    def version(self) -> AnnVersion | None:
        """The database state its FAISS index must mirror (None while no model is bound)."""
        keys = ("uid", GENERATION, "model")
        statement = sa.select(self.meta.c.key, self.meta.c.value).where(self.meta.c.key.in_(keys))
        with self.engine.connect() as connection:
            values = {key: value for key, value in connection.execute(statement)}
        if "model" not in values:
            return None
        return AnnVersion(values.get("uid", ""), int(values.get(GENERATION, 0)), values["model"])

    def follow_ann(self) -> AnnIndex | None:
        """Load the FAISS index (rebuilt when missing or stale) and keep it up to date with this
        store's writes from now on, saving it every :data:`ANN_SAVE_SECONDS` and on close."""
        with self._ann_lock:
            self._following = True
            return self._current_ann()

    def _current_ann(self) -> AnnIndex | None:
        """The FAISS index of the database as it is now: the one in memory, else the file's,
        else one rebuilt from the database (and saved)."""
        version = self.version()
        if version is None:
            return None
        if self._ann is not None and self._ann.version == version:
            return self._ann
        ann = AnnIndex.load(self.ann_path)
        if ann is None or ann.version != version:
            ann = self._build_ann(version)
            self._save_ann(ann)
        self._ann = ann
        return ann

    def _build_ann(self, version: AnnVersion) -> AnnIndex:
        """A FAISS index of every face of the database (``version``), trained on a seeded random
        sample of their embeddings where it is an inverted file."""
        faces = self._require_faces()
        with self.engine.connect() as connection:
            ids = np.fromiter(connection.execute(sa.select(faces.c.id)).scalars(), np.int64)
            chosen = np.random.default_rng(0).permutation(ids)[: training_size(len(ids))]
            sample = None
            if len(chosen):
                sample = np.concatenate(
                    [
                        vectors
                        for part in np.array_split(chosen, -(-len(chosen) // EMBEDDING_CHUNK))
                        for _, vectors in self._embedding_chunks(
                            connection, faces.c.id.in_(part.tolist())
                        )
                    ]
                )
            ann = AnnIndex.create(version, len(ids), sample)
            with tqdm(
                total=len(ids), desc="faiss index", unit="face", disable=len(ids) < EMBEDDING_CHUNK
            ) as bar:
                for chunk_ids, vectors in self._embedding_chunks(connection, sa.true()):
                    ann.add(chunk_ids, vectors)
                    bar.update(len(chunk_ids))
        return ann

    def _save_ann(self, ann: AnnIndex) -> None:
        """Write ``ann`` to the index file, rebuilt first when the faces outgrew it."""
        if ann.outgrown(ann.size):
            ann = self._build_ann(ann.version)
            self._ann = ann
        ann.save(self.ann_path)
        self._unsaved_since = None

    def _ann_follow(
        self, before: int, removed: Sequence[int], added: np.ndarray, vectors: np.ndarray
    ) -> None:
        """Apply one committed write (generation ``before`` -> ``before + 1``) to the followed
        FAISS index; an index that missed other writes is rebuilt from the database instead."""
        with self._ann_lock:
            if not self._following:
                return
            ann = self._ann
            if ann is None or ann.version.generation != before:
                self._ann = None
                self._current_ann()
                return
            ann.remove(removed)
            ann.add(added, vectors)
            ann.version = replace(ann.version, generation=before + 1)
            now = time.monotonic()
            if self._unsaved_since is None:
                self._unsaved_since = now
            elif now - self._unsaved_since >= ANN_SAVE_SECONDS:
                self._save_ann(ann)

    def _embedding_chunks(
        self, connection: Connection, where: sa.ColumnElement[bool]
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, (N, D) float32 embeddings) of the faces satisfying ``where``, by id, streamed
        :data:`EMBEDDING_CHUNK` faces at a time."""
        faces = self._require_faces()
        statement = sa.select(faces.c.id, faces.c.embedding).where(where).order_by(faces.c.id)
        result = connection.execution_options(yield_per=EMBEDDING_CHUNK).execute(statement)
        for rows in result.partitions():
            ids = np.fromiter((row[0] for row in rows), np.int64, len(rows))
            vectors = np.frombuffer(b"".join(row[1] for row in rows), np.float32)
            yield ids, vectors.reshape(len(rows), -1)

    def _file_ids(self, connection: Connection, paths: list[str]) -> dict[str, int]:
        statement = sa.select(self.files.c.path, self.files.c.id).where(
            self.files.c.path.in_(paths)
        )
        return {path: int(file_id) for path, file_id in connection.execute(statement)}

    def _face_row(self, file_id: int, face: FacePrediction) -> dict[str, Any]:
        values = face.values()
        if tuple(values) != self.attributes:
            raise ValueError("the face's attributes differ from the index's")
        embedding = np.ascontiguousarray(face.embedding, dtype=np.float32)
        row: dict[str, Any] = {
            "file_id": file_id,
            "landmarks": [[float(x), float(y)] for x, y in face.landmarks],
            "detection_score": float(face.detection_score),
            "embedding": embedding.tobytes(),
        }
        row.update(zip(BOX_COLUMNS, map(float, face.box), strict=True))
        for name, value in values.items():
            if isinstance(value, NumericValue):
                row[VALUE_PREFIX + name] = value.value
            elif isinstance(value, CategoricalValue):
                row[CLASS_PREFIX + name] = value.label
                row[PROBABILITY_PREFIX + name] = value.probability
            else:
                row[PROBABILITY_PREFIX + name] = value.probability
        return row

    # -- reading -----------------------------------------------------------------------------

    def search(
        self,
        query: str | Query,
        min_prob: float = 0.5,
        limit: int = 20,
        like: np.ndarray | None = None,
        exact: bool = False,
    ) -> list[SearchHit]:
        """The best ``limit`` faces satisfying ``query`` (text, parsed with ``min_prob``, or a
        :class:`Query`; ``""`` matches all), ranked by the query's margin, or by cosine
        similarity to the embedding ``like`` when given: through the FAISS index, or over every
        matching embedding with ``exact``. Unknown attributes raise ``QueryError``.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._follow_model()
        if isinstance(query, str):
            query = parse_query(query, self.schema, min_prob)
        if self.faces is None:
            return []
        missing = [name for name in query.attributes if name not in self.attributes]
        if missing:
            raise QueryError(f"the index holds no attribute {', '.join(missing)}")
        columns = self._query_columns()
        where = query.where(columns)
        if like is not None:
            like = np.asarray(like, dtype=np.float32)
            norm = float(np.linalg.norm(like))
            if like.ndim != 1 or norm == 0 or not np.isfinite(norm):
                raise ValueError("like must be a non-zero finite 1-D embedding")
            if exact:
                ranked = self._rank_like_exact(where, like / norm, limit)
            else:
                ranked = self._rank_like_ann(None if query.root is None else where, like, limit)
            rows = {row["id"]: row for row in self._face_rows(self.faces.c.id.in_(list(ranked)))}
            return [self._hit(rows[face_id], score) for face_id, score in ranked.items()]
        score = query.score_clause(columns).label("score")
        statement = (
            self._face_select(score)
            .where(where)
            .order_by(score.desc(), self.faces.c.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            found = connection.execute(statement).mappings().all()
        return [self._hit(row, float(row["score"])) for row in found]

    def _rank_like_exact(
        self, where: sa.ColumnElement[bool], like: np.ndarray, limit: int
    ) -> dict[int, float]:
        """The ``limit`` faces satisfying ``where`` most like the unit vector ``like``, by cosine
        over every matching embedding streamed from the database (the best so far kept)."""
        best_ids, best_scores = np.zeros(0, np.int64), np.zeros(0, np.float32)
        with self.engine.connect() as connection:
            for ids, vectors in self._embedding_chunks(connection, where):
                if vectors.shape[1] != like.size:
                    raise ValueError(
                        f"like has {like.size} dimensions; the index's embeddings have "
                        f"{vectors.shape[1]}"
                    )
                norms = np.linalg.norm(vectors, axis=1)
                scores = vectors @ like / np.where(norms > 0, norms, 1.0)
                best_ids = np.concatenate([best_ids, ids])
                best_scores = np.concatenate([best_scores, scores])
                if len(best_ids) > limit:
                    keep = np.argsort(-best_scores, kind="stable")[:limit]
                    best_ids, best_scores = best_ids[keep], best_scores[keep]
        order = np.argsort(-best_scores, kind="stable")[:limit]
        return {int(best_ids[i]): float(best_scores[i]) for i in order}

    def _rank_like_ann(
        self, where: sa.ColumnElement[bool] | None, like: np.ndarray, limit: int
    ) -> dict[int, float]:
        """The ``limit`` faces satisfying ``where`` (None: all) most like ``like``, through the
        FAISS index restricted to the ids ``where`` selects."""
        with self._ann_lock:
            ann = self._current_ann()
            if ann is None:
                return {}
            allowed = None
            if where is not None:
                statement = sa.select(self._require_faces().c.id).where(where)
                with self.engine.connect() as connection:
                    allowed = np.fromiter(connection.execute(statement).scalars(), np.int64)
            ids, scores = ann.search(like, limit, allowed)
        return dict(zip(ids.tolist(), scores.tolist(), strict=True))

    def face(self, face_id: int) -> FaceRecord | None:
        """The face ``face_id``, or None when the index holds no such face."""
        self._follow_model()
        if self.faces is None:
            return None
        rows = self._face_rows(
            self.faces.c.id == face_id,
            self.faces.c.landmarks,
            self.faces.c.detection_score,
            self.faces.c.embedding,
        )
        if not rows:
            return None
        row = rows[0]
        return FaceRecord(
            face_id=row["id"],
            path=row["path"],
            box=self._box(row),
            landmarks=tuple((float(x), float(y)) for x, y in row["landmarks"]),
            detection_score=float(row["detection_score"]),
            probabilities=self._probabilities(row),
            embedding=np.frombuffer(row["embedding"], dtype=np.float32),
            values=self._values(row),
        )

    def is_indexed_path(self, path: str | Path) -> bool:
        """Whether ``path`` (resolved to an absolute path) is a file of the index."""
        resolved = str(Path(path).expanduser().resolve())
        statement = sa.select(self.files.c.id).where(self.files.c.path == resolved)
        with self.engine.connect() as connection:
            return connection.execute(statement).first() is not None

    def stats(self) -> IndexStats:
        """How many files (and failed ones) and faces the index holds, and its model."""
        self._follow_model()
        failed = sa.func.sum(sa.case((self.files.c.status == STATUS_FAILED, 1), else_=0))
        statement = sa.select(sa.func.count(), failed, sa.func.sum(self.files.c.faces))
        with self.engine.connect() as connection:
            files, failed_files, faces = connection.execute(statement).one()
        return IndexStats(
            files=int(files),
            failed=int(failed_files or 0),
            faces=int(faces or 0),
            model=None if self.model is None else self.model.fingerprint,
            model_name=None if self.model is None else self.model.name,
        )

    # -- helpers -----------------------------------------------------------------------------

    def _read_model(self) -> IndexModel | None:
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(self.meta.c.key, self.meta.c.value)).all()
        values = {key: value for key, value in rows}
        if "model" not in values:
            return None
        if values.get("schema") != SCHEMA_VERSION:
            raise ValueError(f"index schema {values.get('schema')}, expected {SCHEMA_VERSION}")
        schema = Schema.from_json(json.loads(values.get("attribute_schema", values["attributes"])))
        return IndexModel(values["model"], values["model_name"], schema, values["model_source"])

    def _follow_model(self) -> None:
        """Take up the model that another process bound (or rebound) since this store read it,
        so a long-lived reader (the server) follows an indexer."""
        model = self._read_model()
        if model == self.model:
            return
        if self.faces is not None:
            self.metadata.remove(self.faces)
        self.model = model
        self.faces = None if model is None else _faces_table(self.metadata, model.schema)

    def _create_faces(self, schema: Schema) -> sa.Table:
        table = _faces_table(self.metadata, schema)
        table.create(self.engine, checkfirst=True)
        return table

    def _require_faces(self) -> sa.Table:
        if self.faces is None:
            raise RuntimeError("no model is bound to this index yet (call bind_model)")
        return self.faces

    def _require_model(self) -> IndexModel:
        if self.model is None:
            raise RuntimeError("no model is bound to this index yet (call bind_model)")
        return self.model

    def _query_columns(self) -> dict[str, Any]:
        """The columns a :class:`Query` reads, by attribute (see ``query.Columns``)."""
        faces = self._require_faces()
        columns: dict[str, Any] = {}
        for attribute in self._require_model().schema.attributes:
            name = attribute.name
            if attribute.kind == "numeric":
                columns[name] = faces.c[VALUE_PREFIX + name]
            elif attribute.kind == "categorical":
                columns[name] = (faces.c[CLASS_PREFIX + name], faces.c[PROBABILITY_PREFIX + name])
            else:
                columns[name] = faces.c[PROBABILITY_PREFIX + name]
        return columns

    def _face_select(self, *extra: sa.ColumnElement[Any]) -> sa.Select[Any]:
        faces = self._require_faces()
        attributes = _attribute_columns(self._require_model().schema)
        return sa.select(
            faces.c.id,
            self.files.c.path,
            *(faces.c[name] for name in BOX_COLUMNS),
            *(faces.c[column.name] for column in attributes),
            *extra,
        ).join_from(faces, self.files, faces.c.file_id == self.files.c.id)

    def _face_rows(
        self, where: sa.ColumnElement[bool], *extra: sa.ColumnElement[Any]
    ) -> list[sa.RowMapping]:
        with self.engine.connect() as connection:
            return list(connection.execute(self._face_select(*extra).where(where)).mappings())

    def _box(self, row: sa.RowMapping) -> tuple[float, float, float, float]:
        x, y, w, h = (float(row[name]) for name in BOX_COLUMNS)
        return x, y, w, h

    def _probabilities(self, row: sa.RowMapping) -> dict[str, float]:
        schema = self._require_model().schema
        return {
            a.name: float(row[PROBABILITY_PREFIX + a.name])
            for a in schema.attributes
            if a.kind != "numeric"
        }

    def _values(self, row: sa.RowMapping) -> dict[str, float | str]:
        values: dict[str, float | str] = {}
        for attribute in self._require_model().schema.attributes:
            if attribute.kind == "numeric":
                values[attribute.name] = float(row[VALUE_PREFIX + attribute.name])
            elif attribute.kind == "categorical":
                values[attribute.name] = str(row[CLASS_PREFIX + attribute.name])
        return values

    def _hit(self, row: sa.RowMapping, score: float) -> SearchHit:
        return SearchHit(
            row["id"],
            row["path"],
            self._box(row),
            score,
            self._probabilities(row),
            self._values(row),
        )

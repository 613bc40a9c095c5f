"""The attribute index: files, faces and their attribute probabilities in SQLite or PostgreSQL.

Three SQLAlchemy Core tables: ``meta`` (which model made the index, its attributes), ``files``
(one row per image file: absolute path, size, mtime_ns, sha256, status, error, face count) and
``faces`` (box, landmarks, detection score, the model's embedding as float32 bytes and one double
column ``p_<attribute>`` per attribute, each indexed, so a :class:`~faceattr.retrieval.query.Query`
compiles to a SQL ``WHERE`` clause and its ranking margin to an ``ORDER BY``). The ``faces`` table
follows the model's attributes, so it is created when the first model is bound to the index.

SQLite (a path, or ``sqlite:///path``) runs in WAL mode, so searches read while an indexer writes;
``postgresql://user@host:port/db`` goes through psycopg 3. Every :meth:`IndexStore.write_files`
call is one transaction: a crash loses at most the batch being written.

``like`` searches rank the matching faces by cosine similarity in numpy, over their embeddings
read from the database; comfortable up to about 1e5 matching faces.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, make_url

from faceattr.retrieval.query import Query, QueryError, parse_query

if TYPE_CHECKING:
    from faceattr.inference.predictor import FacePrediction

SCHEMA_VERSION = "1"
STATUS_OK = "ok"
STATUS_FAILED = "failed"
PROBABILITY_PREFIX = "p_"
BOX_COLUMNS = ("box_x", "box_y", "box_w", "box_h")


class IndexModelError(ValueError):
    """The index was built by another model than the one asked to extend it."""


@dataclass(frozen=True)
class IndexModel:
    """The model an index belongs to: its ``fingerprint`` (hash of description and weights),
    registry ``name``, ``attributes`` (one probability column each) and where it was loaded
    from (``source``, for ``like`` searches; may be empty)."""

    fingerprint: str
    name: str
    attributes: tuple[str, ...]
    source: str = ""

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
    the ``like`` embedding."""

    face_id: int
    path: str
    box: tuple[float, float, float, float]
    score: float
    probabilities: dict[str, float]


@dataclass(frozen=True)
class FaceRecord:
    """Everything the index holds about one face."""

    face_id: int
    path: str
    box: tuple[float, float, float, float]
    landmarks: tuple[tuple[float, float], ...]
    detection_score: float
    probabilities: dict[str, float]
    embedding: np.ndarray = field(repr=False)


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


def _faces_table(metadata: sa.MetaData, attributes: Sequence[str]) -> sa.Table:
    columns = [
        sa.Column(PROBABILITY_PREFIX + name, sa.Double, nullable=False) for name in attributes
    ]
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

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.metadata = sa.MetaData()
        self.meta, self.files = _fixed_tables(self.metadata)
        self.metadata.create_all(engine)
        self.model = self._read_model()
        self.faces = None if self.model is None else self._create_faces(self.model.attributes)

    @classmethod
    def open(cls, db: str, create: bool = False) -> IndexStore:
        """Open the index at ``db`` (a path or ``sqlite:///path``: SQLite in WAL mode;
        ``postgresql://user@host:port/db``). A missing SQLite file is created only with
        ``create``; an unreachable server is a `ValueError` naming it."""
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
            return cls(engine)
        except sa.exc.OperationalError as error:
            engine.dispose()
            where = url.render_as_string(hide_password=True)
            raise ValueError(f"cannot open the index {where}: {error.orig}") from None

    @property
    def attributes(self) -> tuple[str, ...]:
        """The indexed attributes (empty while no model is bound)."""
        return () if self.model is None else self.model.attributes

    def close(self) -> None:
        """Release the database connections."""
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
                "model_source": model.source,
            }
            connection.execute(
                self.meta.insert(), [{"key": k, "value": v} for k, v in values.items()]
            )
        self.faces = self._create_faces(model.attributes)
        self.model = model

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
        with self.engine.begin() as connection:
            ids = self._file_ids(connection, list(latest))
            if ids:
                connection.execute(faces.delete().where(faces.c.file_id.in_(list(ids.values()))))
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
                connection.execute(faces.insert(), face_rows)

    def remove_files(self, paths: Sequence[str]) -> int:
        """Forget ``paths`` and their faces in one transaction; the number of files removed."""
        if not paths:
            return 0
        faces = self._require_faces()
        with self.engine.begin() as connection:
            ids = list(self._file_ids(connection, list(paths)).values())
            if ids:
                connection.execute(faces.delete().where(faces.c.file_id.in_(ids)))
                connection.execute(self.files.delete().where(self.files.c.id.in_(ids)))
        return len(ids)

    def _file_ids(self, connection: Connection, paths: list[str]) -> dict[str, int]:
        statement = sa.select(self.files.c.path, self.files.c.id).where(
            self.files.c.path.in_(paths)
        )
        return {path: int(file_id) for path, file_id in connection.execute(statement)}

    def _face_row(self, file_id: int, face: FacePrediction) -> dict[str, Any]:
        if tuple(face.attributes) != self.attributes:
            raise ValueError("the face's attributes differ from the index's")
        embedding = np.ascontiguousarray(face.embedding, dtype=np.float32)
        row: dict[str, Any] = {
            "file_id": file_id,
            "landmarks": [[float(x), float(y)] for x, y in face.landmarks],
            "detection_score": float(face.detection_score),
            "embedding": embedding.tobytes(),
        }
        row.update(zip(BOX_COLUMNS, map(float, face.box), strict=True))
        for name, p in zip(self.attributes, face.probabilities, strict=True):
            row[PROBABILITY_PREFIX + name] = float(p)
        return row

    # -- reading -----------------------------------------------------------------------------

    def search(
        self,
        query: str | Query,
        min_prob: float = 0.5,
        limit: int = 20,
        like: np.ndarray | None = None,
    ) -> list[SearchHit]:
        """The best ``limit`` faces satisfying ``query`` (text, parsed with ``min_prob``, or a
        :class:`Query`; ``""`` matches all), ranked by the query's margin, or by cosine
        similarity to the embedding ``like`` when given. Unknown attributes raise ``QueryError``.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._follow_model()
        if isinstance(query, str):
            query = parse_query(query, self.attributes or None, min_prob)
        if self.faces is None:
            return []
        missing = [name for name in query.attributes if name not in self.attributes]
        if missing:
            raise QueryError(f"the index holds no attribute {', '.join(missing)}")
        columns = self._probability_columns()
        where = query.where(columns)
        if like is not None:
            ranked = self._rank_like(where, np.asarray(like, dtype=np.float64), limit)
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

    def _rank_like(
        self, where: sa.ColumnElement[bool], like: np.ndarray, limit: int
    ) -> dict[int, float]:
        faces = self._require_faces()
        norm = float(np.linalg.norm(like))
        if like.ndim != 1 or norm == 0 or not np.isfinite(norm):
            raise ValueError("like must be a non-zero finite 1-D embedding")
        statement = sa.select(faces.c.id, faces.c.embedding).where(where).order_by(faces.c.id)
        with self.engine.connect() as connection:
            rows = connection.execute(statement).all()
        if not rows:
            return {}
        ids = np.array([row[0] for row in rows])
        embeddings = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
        if embeddings.size != len(rows) * like.size:
            raise ValueError(
                f"like has {like.size} dimensions; the index's embeddings have "
                f"{embeddings.size // len(rows)}"
            )
        embeddings = embeddings.reshape(len(rows), like.size).astype(np.float64)
        norms = np.linalg.norm(embeddings, axis=1) * norm
        similarity = embeddings @ like / np.where(norms > 0, norms, 1.0)
        best = np.argsort(-similarity, kind="stable")[:limit]
        return {int(ids[i]): float(similarity[i]) for i in best}

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
        attributes = tuple(json.loads(values["attributes"]))
        return IndexModel(values["model"], values["model_name"], attributes, values["model_source"])

    def _follow_model(self) -> None:
        """Take up the model that another process bound (or rebound) since this store read it,
        so a long-lived reader (the server) follows an indexer."""
        model = self._read_model()
        if model == self.model:
            return
        if self.faces is not None:
            self.metadata.remove(self.faces)
        self.model = model
        self.faces = None if model is None else _faces_table(self.metadata, model.attributes)

    def _create_faces(self, attributes: Sequence[str]) -> sa.Table:
        table = _faces_table(self.metadata, attributes)
        table.create(self.engine, checkfirst=True)
        return table

    def _require_faces(self) -> sa.Table:
        if self.faces is None:
            raise RuntimeError("no model is bound to this index yet (call bind_model)")
        return self.faces

    def _probability_columns(self) -> dict[str, sa.ColumnElement[float]]:
        faces = self._require_faces()
        return {name: faces.c[PROBABILITY_PREFIX + name] for name in self.attributes}

    def _face_select(self, *extra: sa.ColumnElement[Any]) -> sa.Select[Any]:
        faces = self._require_faces()
        probabilities = self._probability_columns().values()
        return sa.select(
            faces.c.id,
            self.files.c.path,
            *(faces.c[name] for name in BOX_COLUMNS),
            *probabilities,
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
        return {name: float(row[PROBABILITY_PREFIX + name]) for name in self.attributes}

    def _hit(self, row: sa.RowMapping, score: float) -> SearchHit:
        return SearchHit(row["id"], row["path"], self._box(row), score, self._probabilities(row))

"""Nearest-neighbour search over the faces' embeddings with FAISS, in a file beside the database.

Cosine similarity is the inner product of L2-normalised vectors. A small index (below
:data:`EXACT_BELOW` faces) is a flat, exact one; a larger one is an inverted file (``IVF<n>,Flat``,
``n`` about the square root of the faces, trained on a sample of them) probed in :data:`NPROBE` of
its lists. Both take the faces' database ids (``add_with_ids``) and drop faces by id
(``remove_ids``, through a hash table from id to list for the inverted file), so the index follows
the database batch by batch. A search restricted to some ids (an attribute filter) passes them as
a FAISS ``IDSelectorBitmap``, probing proportionally more lists the fewer ids it allows (all of
them, an exact search, when they are few), so the filter does not cost matches.

The file holds one JSON header line (the :class:`AnnVersion` of the database state it mirrors)
and then the FAISS index; it is written to a temporary file and renamed over the old one, so a kill
leaves either the old file or the new one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

EXACT_BELOW = 20_000
"""Faces below which the index is flat: every search exact (and, at this size, a millisecond)."""
NPROBE = 64
"""Inverted lists an unfiltered search probes: recall@10 0.92 (0.90 filtered) at 6x the exact
search's speed on 100k synthetic faces of 316 lists (``benchmarks/search_scale.py``)."""
TRAIN_PER_LIST = 39
"""Training vectors per inverted list (FAISS' k-means asks for at least 39)."""
REBUILD_GROWTH = 4
"""An inverted file is retrained once the faces outgrow this multiple of those it was built for."""
FORMAT = "faceattr-ann/1"


@dataclass(frozen=True)
class AnnVersion:
    """The database state an index mirrors: the database's ``uid`` (new whenever a model is bound
    to it), its write ``generation`` (one more per write transaction) and the ``model``
    fingerprint."""

    uid: str
    generation: int
    model: str


def nlist_for(count: int) -> int:
    """Inverted lists for ``count`` faces: about ``sqrt(count)``, at least 1."""
    return max(1, round(math.sqrt(count)))


def normalised(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` (N, D) as a C-contiguous float32 copy with unit rows (zero rows stay zero)."""
    rows = np.array(vectors, dtype=np.float32, order="C", ndmin=2)
    faiss.normalize_L2(rows)
    return rows


class AnnIndex:
    """A FAISS index of face embeddings keyed by face id, and the database state it mirrors.

    ``index`` is None while no face was added (the dimension is not known yet); ``built_for`` is
    the number of faces an inverted file was trained for (0 for a flat index)."""

    def __init__(self, index: faiss.Index | None, version: AnnVersion, built_for: int = 0) -> None:
        self.index = index
        self.version = version
        self.built_for = built_for

    @classmethod
    def create(cls, version: AnnVersion, count: int, sample: np.ndarray | None) -> AnnIndex:
        """An empty index for ``count`` faces: flat below :data:`EXACT_BELOW`, else an inverted
        file trained on ``sample`` (N, D) embeddings (at least :func:`training_size` of them)."""
        if count < EXACT_BELOW or sample is None:
            return cls(None, version)
        vectors = normalised(sample)
        nlist = min(nlist_for(count), max(1, len(vectors) // TRAIN_PER_LIST))
        dimension = vectors.shape[1]
        index = faiss.IndexIVFFlat(
            faiss.IndexFlatIP(dimension), dimension, nlist, faiss.METRIC_INNER_PRODUCT
        )
        index.cp.niter = 10
        index.train(vectors)
        index.set_direct_map_type(faiss.DirectMap.Hashtable)
        return cls(index, version, count)

    @property
    def size(self) -> int:
        """The number of faces held."""
        return 0 if self.index is None else int(self.index.ntotal)

    @property
    def exact(self) -> bool:
        """Whether every search is exact (a flat index)."""
        return self.built_for == 0

    def outgrown(self, count: int) -> bool:
        """Whether an index for ``count`` faces should be rebuilt: a flat one past
        :data:`EXACT_BELOW`, an inverted file past :data:`REBUILD_GROWTH` times its size."""
        if self.exact:
            return count >= EXACT_BELOW
        return count > REBUILD_GROWTH * self.built_for

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add the faces ``ids`` (int64) with their embeddings (N, D)."""
        if len(ids) == 0:
            return
        rows = normalised(vectors)
        if self.index is None:
            self.index = faiss.IndexIDMap(faiss.IndexFlatIP(rows.shape[1]))
        if rows.shape[1] != self.index.d:
            raise ValueError(
                f"embeddings of {rows.shape[1]} dimensions; the index has {self.index.d}"
            )
        self.index.add_with_ids(rows, np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: Sequence[int] | np.ndarray) -> None:
        """Drop the faces ``ids`` (ids not held are ignored)."""
        if self.index is not None and len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(
        self,
        query: np.ndarray,
        k: int,
        allowed: np.ndarray | None = None,
        nprobe: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ids and cosine similarities of the ``k`` faces most like ``query`` (a 1-D
        embedding), best first; only among the ids ``allowed`` when given. An inverted file
        probes ``nprobe`` lists (default :data:`NPROBE`), scaled up by how few faces ``allowed``
        keeps and doubled until ``k`` matches are found or every list was probed."""
        if self.index is None or self.size == 0 or (allowed is not None and len(allowed) == 0):
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        vector = normalised(query.reshape(1, -1))
        if vector.shape[1] != self.index.d:
            raise ValueError(
                f"like has {vector.shape[1]} dimensions; the index's embeddings have {self.index.d}"
            )
        selector = None if allowed is None else id_bitmap(allowed)
        wanted = min(k, self.size if allowed is None else len(allowed))
        if self.exact:
            params = faiss.SearchParameters(sel=selector)
            scores, ids = self.index.search(vector, k, params=params)
        else:
            nlist = self.index.nlist
            share = 1.0 if allowed is None else len(allowed) / self.size
            probe = min(nlist, math.ceil((nprobe or NPROBE) / max(share, 1e-9)))
            while True:
                params = faiss.SearchParametersIVF(sel=selector, nprobe=probe)
                scores, ids = self.index.search(vector, k, params=params)
                if (ids[0] >= 0).sum() >= wanted or probe >= nlist:
                    break
                probe = min(nlist, 2 * probe)
        found = ids[0] >= 0
        return ids[0][found], scores[0][found]

    def save(self, path: Path) -> None:
        """Write the index to ``path`` atomically (temporary file, fsync, rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {"format": FORMAT, "built_for": self.built_for, **asdict(self.version)}
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(json.dumps(header).encode() + b"\n")
                if self.index is not None:
                    faiss.write_index(self.index, faiss.PyCallbackIOWriter(file.write))
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> AnnIndex | None:
        """The index saved at ``path``, or None when it is missing or unreadable (truncated,
        another format): the caller rebuilds it from the database."""
        try:
            with open(path, "rb") as file:
                header = json.loads(file.readline())
                if header.get("format") != FORMAT:
                    return None
                version = AnnVersion(header["uid"], int(header["generation"]), header["model"])
                rest = file.read(1)
                if not rest:
                    return cls(None, version, int(header["built_for"]))
                file.seek(-1, os.SEEK_CUR)
                index = faiss.read_index(faiss.PyCallbackIOReader(file.read))
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        return cls(index, version, int(header["built_for"]))


def id_bitmap(ids: np.ndarray) -> faiss.IDSelector:
    """A FAISS selector of ``ids`` (non-negative): a bitmap up to the largest, built in numpy
    (a few milliseconds for a million ids, where a hash set takes a hundred)."""
    bits = np.zeros(int(ids.max()) + 1, dtype=bool)
    bits[ids] = True
    bitmap = np.packbits(bits, bitorder="little")
    selector = faiss.IDSelectorBitmap(bitmap)
    selector.bitmap_array = bitmap  # the selector reads the array: keep it alive with it
    return selector


def training_size(count: int) -> int:
    """How many sampled embeddings :meth:`AnnIndex.create` trains on for ``count`` faces."""
    return 0 if count < EXACT_BELOW else min(count, TRAIN_PER_LIST * nlist_for(count))

"""Similarity search at 10k, 100k and 1M faces: exact cosine in numpy against the FAISS indexes,
on synthetic 1,280-d float32 embeddings clustered like faces (identities of about 20 photos).

    python benchmarks/search_scale.py                       # 10k, 100k, 1M
    python benchmarks/search_scale.py --sizes 10000,100000 --queries 200

Baseline: what a practitioner writes first, the embeddings in one float32 numpy array scored
against the query in chunks of 65,536 rows (``argpartition`` for the top 10); the filtered query
masks the scores with the attribute filter (``Smiling and not Eyeglasses``, about 46% of the
faces). Candidates, each built from the same array: ``AnnIndex``, what ``faceattr index`` builds
(IVF-Flat, about sqrt(N) lists, probed in ``--nprobe`` lists; filtered through a bitmap
``IDSelector`` of the allowed ids), and HNSW32 (up to ``--hnsw-max`` faces: its build is the
slowest; filtered through the same selector). For each: build time (train + add), file size,
median query latency, and recall@10 against the exact top 10, unfiltered and filtered; then the
ratios against the exact baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import faiss
import numpy as np

from faceattr.retrieval.ann import AnnIndex, AnnVersion, id_bitmap, normalised, training_size

DIMENSION = 1280
K = 10
CHUNK = 65_536
PHOTOS_PER_IDENTITY = 20


def embeddings(count: int, seed: int) -> np.ndarray:
    """``count`` unit float32 vectors: one per photo of ``count / 20`` identities (cosine to their
    identity's centre about 0.7), built in chunks to stay within 1.1x the array's memory."""
    rng = np.random.default_rng(seed)
    identities = max(1, count // PHOTOS_PER_IDENTITY)
    centres = rng.standard_normal((identities, DIMENSION), dtype=np.float32)
    out = np.empty((count, DIMENSION), np.float32)
    for start in range(0, count, CHUNK):
        stop = min(count, start + CHUNK)
        who = rng.integers(identities, size=stop - start)
        noise = rng.standard_normal((stop - start, DIMENSION), dtype=np.float32)
        out[start:stop] = centres[who] + noise
    faiss.normalize_L2(out)
    return out


def exact_top(vectors: np.ndarray, query: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The exact top-K row ids, scoring ``CHUNK`` rows at a time (masked rows excluded)."""
    best_ids, best_scores = np.zeros(0, np.int64), np.zeros(0, np.float32)
    for start in range(0, len(vectors), CHUNK):
        scores = vectors[start : start + CHUNK] @ query
        if mask is not None:
            scores = np.where(mask[start : start + CHUNK], scores, -np.inf)
        top = np.argpartition(-scores, K)[:K]
        best_ids = np.concatenate([best_ids, top + start])
        best_scores = np.concatenate([best_scores, scores[top]])
    order = np.argsort(-best_scores)[:K]
    return best_ids[order]


Search = Callable[..., np.ndarray]
"""``search(query, allowed=ids or None, setting=int)``: the top-K ids."""


@dataclass
class Result:
    name: str
    build_s: float
    file_mb: float
    latency_ms: float
    recall: float
    filtered_ms: float
    filtered_recall: float


def file_mb(index: faiss.Index) -> float:
    """Size of the index written with ``faiss.write_index``, in MB."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "index.faiss")
        faiss.write_index(index, path)
        return os.path.getsize(path) / 1e6


def timed_search(
    search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray, truth: list[np.ndarray]
) -> tuple[float, float]:
    """Median milliseconds per query and mean recall@K of ``search`` against ``truth``."""
    times, recalls = [], []
    for query, expected in zip(queries, truth, strict=True):
        start = time.perf_counter()
        found = search(query)
        times.append((time.perf_counter() - start) * 1000)
        recalls.append(len(set(found.tolist()) & set(expected.tolist())) / K)
    return statistics.median(times), float(np.mean(recalls))


def build_ann_index(vectors: np.ndarray) -> tuple[faiss.Index, str, Search]:
    """What ``faceattr index`` builds (``AnnIndex``), added 65,536 faces at a time; the setting
    is ``nprobe``."""
    sample = vectors[
        np.random.default_rng(0).permutation(len(vectors))[: training_size(len(vectors))]
    ]
    index = AnnIndex.create(AnnVersion("", 0, ""), len(vectors), sample)
    for start in range(0, len(vectors), CHUNK):
        stop = min(len(vectors), start + CHUNK)
        index.add(np.arange(start, stop, dtype=np.int64), vectors[start:stop])
    assert index.index is not None
    kind = "flat" if index.exact else f"IVF{index.index.nlist}-Flat"

    def search(query: np.ndarray, allowed: np.ndarray | None, setting: int) -> np.ndarray:
        return index.search(query, K, allowed, setting)[0]

    return index.index, f"AnnIndex {kind}", search


def build_hnsw(vectors: np.ndarray) -> tuple[faiss.Index, str, Search]:
    """HNSW, 32 links a node; the setting is ``efSearch``; filtered through an ``IDSelector``."""
    index = faiss.IndexHNSWFlat(DIMENSION, 32, faiss.METRIC_INNER_PRODUCT)
    for start in range(0, len(vectors), CHUNK):
        index.add(vectors[start : start + CHUNK])

    def search(query: np.ndarray, allowed: np.ndarray | None, setting: int) -> np.ndarray:
        selector = None if allowed is None else id_bitmap(allowed)
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=setting)
        return index.search(normalised(query), K, params=params)[1][0]

    return index, "HNSW32", search


def run(size: int, queries_count: int, nprobes: list[int], hnsw_max: int) -> None:
    """Measure every candidate at ``size`` faces and print a table."""
    start = time.perf_counter()
    vectors = embeddings(size, seed=size)
    rng = np.random.default_rng(1)
    mask = (rng.random(size) < 0.5) & ~(rng.random(size) < 0.07)  # Smiling and not Eyeglasses
    allowed = np.flatnonzero(mask).astype(np.int64)
    picked = vectors[rng.integers(size, size=queries_count)]
    noise = rng.standard_normal(picked.shape, dtype=np.float32) / np.sqrt(DIMENSION)
    queries = normalised(picked + noise)  # another photo of a known identity
    print(
        f"\n{size:,} faces x {DIMENSION} float32 ({vectors.nbytes / 1e6:,.0f} MB), made in "
        f"{time.perf_counter() - start:.1f} s; {queries_count} queries; the filter keeps "
        f"{mask.mean():.0%}; {faiss.omp_get_max_threads()} threads",
        flush=True,
    )
    truth, filtered_truth, exact_ms, filtered_ms = [], [], [], []
    for query in queries:
        t0 = time.perf_counter()
        truth.append(exact_top(vectors, query, None))
        t1 = time.perf_counter()
        filtered_truth.append(exact_top(vectors, query, mask))
        exact_ms.append((t1 - t0) * 1000)
        filtered_ms.append((time.perf_counter() - t1) * 1000)
    exact = Result(
        "exact numpy, chunked",
        0.0,
        vectors.nbytes / 1e6,
        statistics.median(exact_ms),
        1.0,
        statistics.median(filtered_ms),
        1.0,
    )
    print(
        f"{'method':32s} {'build s':>8s} {'MB':>7s} {'ms/query':>9s} {'recall@10':>9s} "
        f"{'filt ms':>8s} {'filt rec':>8s} {'speed-up':>8s} {'filt sp':>8s} {'memory':>7s}"
    )
    row(exact, exact)
    families: list[tuple[Callable[[np.ndarray], tuple[faiss.Index, str, Search]], str, list[int]]]
    families = [(build_ann_index, "nprobe", nprobes)]
    if size <= hnsw_max:
        families.append((build_hnsw, "efSearch", [64, 128]))
    for build, setting, values in families:
        t0 = time.perf_counter()
        index, name, search = build(vectors)
        build_s = time.perf_counter() - t0
        size_mb = file_mb(index)
        exact_index = name.endswith("flat")
        for value in values[:1] if exact_index else values:
            plain = partial(search, allowed=None, setting=value)
            latency, recall = timed_search(plain, queries, truth)
            only = partial(search, allowed=allowed, setting=value)
            filtered = timed_search(only, queries, filtered_truth)
            label = name if exact_index else f"{name} {setting} {value}"
            row(Result(label, build_s, size_mb, latency, recall, *filtered), exact)
        del index


def row(result: Result, exact: Result) -> None:
    """One table line, with the ratios against the exact baseline."""
    print(
        f"{result.name:32s} {result.build_s:8.1f} {result.file_mb:7.0f} {result.latency_ms:9.2f} "
        f"{result.recall:9.3f} {result.filtered_ms:8.2f} {result.filtered_recall:8.3f} "
        f"{exact.latency_ms / result.latency_ms:7.1f}x "
        f"{exact.filtered_ms / result.filtered_ms:7.1f}x {result.file_mb / exact.file_mb:6.2f}x",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--nprobe", default="8,16,32,64", help="AnnIndex probes to measure")
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="largest size for HNSW")
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        run(size, args.queries, [int(p) for p in args.nprobe.split(",")], args.hnsw_max)


if __name__ == "__main__":
    main()

"""Fill an :class:`~faceattr.retrieval.store.IndexStore` with the faces of image files.

:func:`index_paths` is incremental: a file whose size and mtime the index already holds is skipped
without being read; one whose stat changed but whose sha256 did not only gets its stat updated;
new or changed files are predicted and written (old faces replaced), ``batch_size`` files per
transaction, so an interrupted run resumes where it stopped; the store's FAISS index follows
every transaction (:meth:`~faceattr.retrieval.store.IndexStore.follow_ann`). Unreadable and
faceless files are recorded with their reason and reported, never fatal. With ``prune``, indexed
files that no longer exist under the folders being indexed are forgotten with their faces.

With ``devices > 1`` prediction runs in that many worker processes (forkserver, else spawn), one
per CUDA device when there are enough, else on the CPU (the cores shared among them), while this
process, the single writer, commits every finished batch of files.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import safetensors.torch
import torch
from tqdm import tqdm

from faceattr.inference.predictor import ImagePrediction, Predictor, TorchNetwork
from faceattr.retrieval.store import FileEntry, FileState, IndexModel, IndexStore
from faceattr.training.checkpoint import ModelDescription

UNSTORED_DESCRIPTION_KEYS = ("thresholds", "metrics")
"""Parts of ``model.json`` that do not change what the model predicts (not fingerprinted)."""
HASH_BLOCK = 1 << 20
T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


class WorkerFailure(RuntimeError):
    """A prediction worker failed for good; the batches committed before it stay indexed, and
    running the index again resumes after them."""


@dataclass(frozen=True)
class IndexSummary:
    """What one :func:`index_paths` run did: files ``added`` (new or changed, with faces),
    ``skipped`` (unchanged), ``failed`` (reasons in ``failures``), ``faces`` written."""

    added: int
    skipped: int
    failed: int
    faces: int
    failures: tuple[tuple[str, str], ...] = ()
    """(path, reason) of each failed file."""
    removed: int = 0
    """Indexed files gone from disk and pruned (``prune=True``)."""


@dataclass(frozen=True)
class PendingFile:
    """A new or changed file to predict: its absolute path, stat and content hash."""

    path: str
    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class IndexPlan:
    """What a run must do: files to predict, unchanged files with a new stat, skipped files,
    and paths that could not be read at all."""

    pending: list[PendingFile]
    restat: list[FileState]
    skipped: int
    unreadable: list[tuple[str, str]]


def model_fingerprint(description: ModelDescription, state: dict[str, torch.Tensor]) -> str:
    """sha256 of what decides a model's outputs: its description (without thresholds and
    metrics) and every weight tensor (name, dtype, shape, bytes)."""
    digest = hashlib.sha256()
    kept = {k: v for k, v in description.to_dict().items() if k not in UNSTORED_DESCRIPTION_KEYS}
    digest.update(json.dumps(kept, sort_keys=True, default=str).encode())
    for name, tensor in state.items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def index_model(predictor: Predictor, source: str = "") -> IndexModel:
    """The :class:`IndexModel` of ``predictor``'s PyTorch model (loaded from ``source``)."""
    fingerprint = model_fingerprint(predictor.description, predictor.model.state_dict())
    name = predictor.description.model_name
    return IndexModel(fingerprint, name, predictor.description.attribute_schema, source)


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a file's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def plan_index(
    known: dict[str, FileState], paths: Sequence[Path], progress: bool = True
) -> IndexPlan:
    """Compare ``paths`` with the ``known`` files of an index: stat first, sha256 only when the
    stat changed."""
    pending, restat, unreadable = [], [], []
    skipped = 0
    resolved = dict.fromkeys(str(Path(p).expanduser().resolve()) for p in paths)
    for path in tqdm(resolved, desc="scan", unit="file", disable=not progress):
        try:
            stat = os.stat(path)
            old = known.get(path)
            if old is not None and (old.size, old.mtime_ns) == (stat.st_size, stat.st_mtime_ns):
                skipped += 1
                continue
            digest = file_sha256(path)
        except OSError as error:
            unreadable.append((path, f"unreadable: {error.strerror or error}"))
            continue
        if old is not None and old.sha256 == digest:
            restat.append(FileState(path, stat.st_size, stat.st_mtime_ns, digest, old.status, 0))
            skipped += 1
        else:
            pending.append(PendingFile(path, stat.st_size, stat.st_mtime_ns, digest))
    return IndexPlan(pending, restat, skipped, unreadable)


def missing_under(known: Iterable[str], folders: Sequence[Path]) -> list[str]:
    """The ``known`` paths inside one of ``folders`` that no longer exist on disk."""
    roots = [Path(folder).expanduser().resolve() for folder in folders]
    return [
        path
        for path in known
        if any(Path(path).is_relative_to(root) for root in roots) and not os.path.exists(path)
    ]


def index_paths(
    store: IndexStore,
    predictor: Predictor,
    paths: Sequence[Path],
    devices: int = 1,
    batch_size: int = 32,
    progress: bool = True,
    reindex: bool = False,
    workers: int = 2,
    model_source: str = "",
    prune: Sequence[Path] = (),
    ray_address: str | None = None,
) -> IndexSummary:
    """Index the faces of ``paths`` (image files) into ``store`` with ``predictor``'s model.

    ``devices`` prediction processes (see the module docstring), ``batch_size`` faces per forward
    pass and files per transaction, ``workers`` DataLoader processes decoding and detecting for
    each. An index built by another model raises ``IndexModelError`` unless ``reindex``, which
    empties it first. ``model_source`` (the model's path) is kept for ``like`` searches.
    ``prune``: folders whose indexed files that no longer exist are removed from the index.
    ``ray_address``: predict on that Ray cluster instead (``devices`` must be 1; see
    :mod:`faceattr.retrieval.distributed`), writing here just the same.
    """
    if devices < 1 or batch_size < 1 or workers < 0:
        raise ValueError(
            f"need devices >= 1, batch_size >= 1, workers >= 0; got {devices}, {batch_size}, "
            f"{workers}"
        )
    if ray_address is not None and devices > 1:
        raise ValueError("--devices and --ray exclude each other: Ray sizes its own pool")
    store.bind_model(index_model(predictor, model_source), reindex)
    store.follow_ann()
    known = store.file_states()
    removed = store.remove_files(missing_under(known, prune))
    plan = plan_index(known, paths, progress)
    store.update_stats(plan.restat)
    by_path = {pending.path: pending for pending in plan.pending}
    todo = list(by_path)
    chunks: Iterable[Sequence[ImagePrediction]] = ()
    if todo and ray_address is not None:
        from faceattr.retrieval.distributed import predict_on_ray

        chunks = predict_on_ray(predictor, todo, ray_address, batch_size, workers, progress)
    elif todo and devices == 1:
        predictions = predictor.predict_paths(todo, batch_size, workers, progress)
        chunks = batched(predictions, batch_size)
    elif todo:
        chunks = predict_in_processes(predictor, todo, devices, batch_size, workers, progress)
    added = faces = 0
    failures = list(plan.unreadable)
    for chunk in chunks:
        entries = [entry_of(by_path[str(p.path)], p) for p in chunk]
        store.write_files(entries)
        for entry in entries:
            if entry.error is None:
                added += 1
                faces += len(entry.faces)
            else:
                failures.append((entry.path, entry.error))
    return IndexSummary(added, plan.skipped, len(failures), faces, tuple(failures), removed)


def entry_of(pending: PendingFile, prediction: ImagePrediction) -> FileEntry:
    """The :class:`FileEntry` of one predicted file."""
    return FileEntry(
        pending.path,
        pending.size,
        pending.mtime_ns,
        pending.sha256,
        faces=prediction.faces,
        error=prediction.error,
    )


def worker_devices(devices: int) -> list[str]:
    """One torch device name per worker: ``cuda:i`` when CUDA has ``devices`` devices, else
    ``cpu`` each (``ValueError`` when CUDA has some, but fewer)."""
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if available >= devices:
        return [f"cuda:{i}" for i in range(devices)]
    if available:
        raise ValueError(f"{devices} devices asked for, but CUDA has only {available}")
    return ["cpu"] * devices


@dataclass(frozen=True)
class WorkerSpec:
    """What a prediction worker needs to rebuild the predictor on its own device; the weights as
    safetensors bytes (pickled tensors would travel as one file descriptor each, and a pool
    process takes at most 256)."""

    description: ModelDescription
    weights: bytes
    detector: str
    batch_size: int
    workers: int
    threads: int

    @classmethod
    def of(cls, predictor: Predictor, batch_size: int, workers: int, threads: int) -> WorkerSpec:
        """The spec of ``predictor`` (its weights copied to the CPU)."""
        state = {k: v.detach().cpu().contiguous() for k, v in predictor.model.state_dict().items()}
        weights = safetensors.torch.save(state)
        return cls(
            predictor.description, weights, predictor.detector_name, batch_size, workers, threads
        )

    def predictor(self, device: str) -> Predictor:
        """The predictor on ``device`` (``threads`` torch threads on the CPU)."""
        where = torch.device(device)
        if where.type == "cpu":
            torch.set_num_threads(self.threads)
        model = self.description.build()
        model.load_state_dict(safetensors.torch.load(self.weights))
        network = TorchNetwork(model, where, self.description.calibration)
        return Predictor(network, self.description, where, self.detector)

    def predict(self, predictor: Predictor, paths: Sequence[str]) -> list[ImagePrediction]:
        """``predictor``'s results for ``paths``, in order."""
        return list(predictor.predict_paths(paths, self.batch_size, self.workers, progress=False))


_worker_predictor: Predictor | None = None
_worker_spec: WorkerSpec | None = None


def _start_worker(spec: WorkerSpec, devices: Any) -> None:
    """Process-pool initializer: build this worker's predictor on the next free device."""
    global _worker_predictor, _worker_spec
    _worker_predictor = spec.predictor(devices.get())
    _worker_spec = spec


def _predict_chunk(paths: list[str]) -> list[ImagePrediction]:
    assert _worker_predictor is not None and _worker_spec is not None
    return _worker_spec.predict(_worker_predictor, paths)


def worker_context() -> multiprocessing.context.BaseContext:
    """Forkserver where the OS has it (one server imports torch and this module, then forks each
    worker: no CUDA state is inherited and the imports are paid once), else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def predict_in_processes(
    predictor: Predictor,
    paths: Sequence[str],
    devices: int,
    batch_size: int,
    workers: int,
    progress: bool = True,
) -> Iterator[list[ImagePrediction]]:
    """Predictions of ``paths`` by ``devices`` worker processes (see :func:`worker_devices`),
    ``batch_size`` files per task, yielded one task at a time as they finish (any order)."""
    names = worker_devices(devices)
    context = worker_context()
    queue = context.Queue()
    for name in names:
        queue.put(name)
    threads = max(1, (os.cpu_count() or 1) // devices)
    spec = WorkerSpec.of(predictor, batch_size, workers, threads)
    chunks = list(batched(paths, batch_size))
    with (
        ProcessPoolExecutor(devices, context, _start_worker, (spec, queue)) as pool,
        tqdm(total=len(paths), desc="predict", unit="img", disable=not progress) as bar,
    ):
        futures = [pool.submit(_predict_chunk, chunk) for chunk in chunks]
        for future in as_completed(futures):
            predictions = future.result()
            bar.update(len(predictions))
            yield predictions

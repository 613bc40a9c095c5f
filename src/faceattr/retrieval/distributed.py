"""Prediction on a Ray cluster, for ``faceattr index --ray`` and ``faceattr predict --ray``.

A pool of Ray actors, one per GPU of the cluster (each holding one), else one per CPU, each
rebuilding the model from a :class:`~faceattr.retrieval.indexer.WorkerSpec` put in Ray's object
store once; paths go out ``batch_size`` at a time (``ray.util.ActorPool``) and predictions come back
as they finish, for the caller to store: the indexer's single writer commits each chunk in one
transaction, exactly as with local processes. An actor whose process dies is restarted and its
chunk retried (``max_restarts``/``max_task_retries``); past that, or when the driver dies, the
chunks already committed stay indexed, and running the command again resumes (indexed files are
skipped, a file's faces are replaced, never added twice).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import ray
from ray.util import ActorPool
from tqdm import tqdm

from faceattr.inference.predictor import ImagePrediction, Predictor
from faceattr.retrieval.indexer import WorkerFailure, WorkerSpec, batched

RESTARTS = 3
"""How often an actor is restarted (and its chunk retried) before the run fails."""


class PredictionActor:
    """A Ray actor's predictor: the model of ``spec`` on ``device``."""

    def __init__(self, spec: WorkerSpec, device: str) -> None:
        self.spec = spec
        self.predictor = spec.predictor(device)

    def predict(self, paths: list[str]) -> list[ImagePrediction]:
        """The predictions of ``paths``, in order."""
        return self.spec.predict(self.predictor, paths)


def connect(address: str) -> None:
    """Join the Ray cluster at ``address`` (``auto``: the one running here or at
    ``$RAY_ADDRESS``; ``local``: start one in this process; ``ray://host:10001``, ``host:6379``),
    unless this process has joined one already; ``ValueError`` when it cannot be reached."""
    if ray.is_initialized():
        return
    try:
        ray.init(address=None if address == "local" else address, include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ValueError(f"cannot join the Ray cluster {address!r}: {error}") from None


def pool_layout() -> tuple[int, dict[str, float], str]:
    """Actors for the cluster, the resources of each and their torch device: one per GPU, else
    one per CPU."""
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    if gpus:
        return gpus, {"num_gpus": 1, "num_cpus": 1}, "cuda"
    return max(1, int(resources.get("CPU", 1))), {"num_cpus": 1}, "cpu"


def predict_on_ray(
    predictor: Predictor,
    paths: Sequence[str],
    address: str,
    batch_size: int = 32,
    workers: int = 2,
    progress: bool = True,
    actor_class: type[PredictionActor] = PredictionActor,
    max_restarts: int = RESTARTS,
) -> Iterator[list[ImagePrediction]]:
    """Predictions of ``paths`` by a pool of Ray actors on the cluster at ``address`` (see
    :func:`connect`, :func:`pool_layout`), ``batch_size`` files per task, yielded one task at a
    time as they finish (any order). GPU actors decode with ``workers`` DataLoader processes, CPU
    actors in their own process with one torch thread. ``WorkerFailure`` when an actor failed
    more than ``max_restarts`` times."""
    connect(address)
    count, resources, device = pool_layout()
    spec = WorkerSpec.of(predictor, batch_size, workers if device == "cuda" else 0, threads=1)
    actor = ray.remote(actor_class).options(
        **resources, max_restarts=max_restarts, max_task_retries=max_restarts
    )
    spec_ref = ray.put(spec)
    actors: list[Any] = [actor.remote(spec_ref, device) for _ in range(count)]  # ActorHandles
    chunks = list(batched(paths, batch_size))
    try:
        with tqdm(
            total=len(paths), desc=f"predict ({count} Ray actors)", unit="img", disable=not progress
        ) as bar:
            for predictions in ActorPool(actors).map_unordered(
                lambda worker, chunk: worker.predict.remote(chunk), chunks
            ):
                bar.update(len(predictions))
                yield predictions
    except ray.exceptions.RayError as error:
        reason = str(error).strip().splitlines()[0]
        raise WorkerFailure(f"a Ray worker failed: {reason}") from None
    finally:
        for worker in actors:
            ray.kill(worker)

"""Images per second of ``faceattr index`` with local worker processes against Ray actors on
the same number of CPUs, on real CelebA photos (read where they are, never copied).

    python benchmarks/index_throughput.py                   # ../shared/celeba or $FACEATTR_CELEBA
    python benchmarks/index_throughput.py --photos 400 --cpus 2

Each run indexes the same ``--photos`` test-split photos with the shipped model into a fresh
SQLite index through ``index_paths``: one process (``--devices 1``, decoding in-process), ``--cpus``
local worker processes (``--devices N``), and ``--cpus`` Ray actors on a local cluster of ``--cpus``
CPUs started beforehand (``ray.init(num_cpus=N)``, as ``ray start`` would); the actors' start
(each builds the model) is inside the timing, as it is for the local workers. Prints seconds,
images/s and the ratio against the local processes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import ray

from faceattr.data.loaders import load_dataset
from faceattr.inference.predictor import Predictor
from faceattr.retrieval.indexer import index_paths
from faceattr.retrieval.store import IndexStore


def timed_index(predictor: Predictor, photos: list[Path], **options: object) -> float:
    """Seconds to index ``photos`` into a fresh SQLite index with ``options``."""
    with (
        tempfile.TemporaryDirectory() as folder,
        IndexStore.open(str(Path(folder) / "faces.db"), create=True) as store,
    ):
        start = time.perf_counter()
        summary = index_paths(store, predictor, photos, progress=False, **options)  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
        assert summary.added + summary.failed == len(photos)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.environ.get("FACEATTR_CELEBA", "../shared/celeba"))
    parser.add_argument("--photos", type=int, default=400)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    celeba = load_dataset(args.root)
    rows = [int(i) for i in celeba.split_indices("test") if celeba.present[i]][: args.photos]
    photos = [celeba.image_path(row) for row in rows]
    predictor = Predictor.from_checkpoint(device="cpu")
    print(f"{len(photos)} CelebA photos, shipped model {predictor.description.model_name}")
    runs = {
        "1 process": {"devices": 1, "workers": 0},
        f"{args.cpus} local processes": {"devices": args.cpus, "workers": 0},
    }
    seconds = {
        name: timed_index(predictor, photos, batch_size=args.batch_size, **options)
        for name, options in runs.items()
    }
    ray.init(num_cpus=args.cpus, include_dashboard=False)
    try:
        name = f"{args.cpus} Ray actors"
        seconds[name] = timed_index(
            predictor, photos, batch_size=args.batch_size, workers=0, ray_address="auto"
        )
    finally:
        ray.shutdown()
    local = seconds[f"{args.cpus} local processes"]
    for name, value in seconds.items():
        print(
            f"{name:22s} {value:7.1f} s  {len(photos) / value:6.1f} images/s  "
            f"x{local / value:4.2f} of the local processes' rate"
        )


if __name__ == "__main__":
    main()

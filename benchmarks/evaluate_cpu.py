"""Where ``faceattr evaluate``'s CPU time goes: the scoring loop before and after issue 17's fix,
against the model's own forward rate, timed in the same run.

    python benchmarks/evaluate_cpu.py [--model shipped] [--images 256] [--batch-size 256]

Three timings of the same crops (random pixels at the model's input size, one view an image as in
protocols A, D and T; C's ten views cost ten times as much; the rate does not depend on pixels):

- **baseline**: the loop as it was, ``--batch-size`` views (256, evaluate's default) through the
  model in one forward pass, with OpenMP's default wait policy (its threads spin while waiting);
- **now**: ``score_protocol`` as ``faceattr evaluate`` runs it (the same batches of views, cut
  into :data:`~faceattr.models.CPU_BATCH`-image forward passes on a CPU), with the passive wait
  policy that importing faceattr sets before torch loads;
- **own rate**: the model alone, forward passes of ``CPU_BATCH`` already normalised images
  (passive waiting).

Each runs in its own process (the wait policy is read when torch loads) with torch's default
thread count, and prints wall milliseconds per view and the user and system CPU milliseconds per
view (``getrusage``; the system share is what the page faults of large activations cost), the
best of ``--trials``; then the ratios baseline / now and now / own rate.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from faceattr.evaluation.protocols import ProtocolSet
from faceattr.evaluation.scoring import score_protocol, views_to_input
from faceattr.models import CPU_BATCH, AttributeModel
from faceattr.shipped import model_path
from faceattr.training.checkpoint import load_checkpoint


@dataclass(frozen=True)
class Timing:
    """Milliseconds per view: wall clock, user CPU and system CPU."""

    wall: float
    user: float
    system: float

    def line(self, name: str) -> str:
        """One printed row."""
        return (
            f"{name:<10} {self.wall:8.2f} ms/view wall  {self.user:8.2f} user  "
            f"{self.system:8.2f} system"
        )


def timed(run: Callable[[], object], views: int, trials: int) -> Timing:
    """The best of ``trials`` runs of ``run`` (after a warm-up), per view."""
    run()
    best: Timing | None = None
    for _ in range(trials):
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        run()
        after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
        timing = Timing(
            1000 * wall / views,
            1000 * (after.ru_utime - before.ru_utime) / views,
            1000 * (after.ru_stime - before.ru_stime) / views,
        )
        best = timing if best is None or timing.wall < best.wall else best
    assert best is not None
    return best


def baseline_loop(model: AttributeModel, protocol: ProtocolSet, batch_size: int) -> None:
    """The scoring loop before the fix: every batch of views in one forward pass."""
    per_batch = max(1, batch_size // protocol.views)
    with torch.inference_mode():
        for start in range(0, len(protocol), per_batch):
            views = protocol.batch(slice(start, start + per_batch))
            flat = torch.tensor(views.reshape(-1, *views.shape[2:]))
            model.probabilities(views_to_input(flat, model.input_config))


def own_rate(model: AttributeModel, inputs: torch.Tensor) -> None:
    """The model alone on normalised inputs, ``CPU_BATCH`` images a pass."""
    with torch.inference_mode():
        for part in inputs.split(CPU_BATCH):
            model.probabilities(part)


WAIT_POLICY = {"baseline": None, "now": "PASSIVE", "own rate": "PASSIVE"}
"""Each timing's ``OMP_WAIT_POLICY`` (None: unset, OpenMP's default)."""


def measure(name: str, args: argparse.Namespace) -> Timing:
    """The timing ``name`` of the crops, in this process."""
    model = load_checkpoint(model_path(None if args.model == "shipped" else args.model)).eval()
    size = model.input_config.size[0]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "D.npy"
        stored = np.lib.format.open_memmap(path, "w+", np.uint8, (args.images, size, size, 3))
        stored[:] = rng.integers(0, 256, stored.shape, dtype=np.uint8)
        stored.flush()
        protocol = ProtocolSet(
            name="D",
            images=np.load(path, mmap_mode="r"),
            image_ids=np.array([f"{k}.jpg" for k in range(args.images)]),
            labels=np.zeros((args.images, len(model.attributes)), np.float32),
            size=size,
            attributes=tuple(model.attributes),
        )
        runs: dict[str, Callable[[], object]] = {
            "baseline": lambda: baseline_loop(model, protocol, args.batch_size),
            "now": lambda: score_protocol(model, protocol, args.batch_size, "cpu", progress=False),
            "own rate": lambda: own_rate(
                model, views_to_input(torch.from_numpy(np.asarray(stored)), model.input_config)
            ),
        }
        return timed(runs[name], args.images, args.trials)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="shipped", help="an export folder, or 'shipped'")
    parser.add_argument("--images", type=int, default=256, help="crops to score")
    parser.add_argument("--batch-size", type=int, default=256, help="views a batch (evaluate's)")
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--only", choices=list(WAIT_POLICY), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only is not None:  # a child process: one timing, as JSON
        print(json.dumps(asdict(measure(args.only, args))))
        return
    print(
        f"{args.model} model, {args.images} crops, batches of {args.batch_size} views, torch "
        f"threads {torch.get_num_threads()}, CPU_BATCH {CPU_BATCH}"
    )
    timings = {}
    for name, policy in WAIT_POLICY.items():
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        if policy is not None:
            env["OMP_WAIT_POLICY"] = policy
        command = [sys.executable, __file__, *sys.argv[1:], "--only", name]
        output = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        timings[name] = Timing(**json.loads(output.stdout.strip().splitlines()[-1]))
        print(timings[name].line(name), flush=True)
    baseline, now, own = timings.values()
    print(
        f"baseline / now: {baseline.wall / now.wall:.2f}x wall, now / own rate: "
        f"{now.wall / own.wall:.2f}x"
    )


if __name__ == "__main__":
    main()

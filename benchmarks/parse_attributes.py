"""Time our reader of ``list_attr_celeba.txt`` against the parsers practitioners usually write.

Usage: ``python benchmarks/parse_attributes.py [PATH]``; PATH defaults to ``$FACEATTR_CELEBA`` or
``../shared/celeba`` beside the repository (a folder or the file itself). Every parser must give
the same labels; the table shows the best of ``--repeat`` runs (wall-clock and this process's CPU
seconds, which a busy shared machine inflates less) and how many times slower each parser is.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.data.formats import read_attributes

REPO = Path(__file__).resolve().parents[1]


def ours(path: Path) -> np.ndarray:
    """``faceattr.data.formats.read_attributes`` (pandas C engine, vectorised checks)."""
    return read_attributes(path).labels


def split_loop(path: Path) -> np.ndarray:
    """A Python loop over lines with ``str.split`` into lists, then one array."""
    with path.open() as f:
        lines = f.read().splitlines()
    rows = [[int(v) for v in line.split()[1:]] for line in lines[2:] if line.strip()]
    return (np.array(rows, dtype=np.int8) > 0).astype(np.uint8)


def torchvision_style(path: Path) -> np.ndarray:
    """What ``torchvision.datasets.CelebA`` does: ``csv.reader`` on spaces, ``map(int)`` per row."""
    with path.open() as f:
        data = list(csv.reader(f, delimiter=" ", skipinitialspace=True))[2:]
    values = [list(map(int, row[1:])) for row in data]
    return ((np.array(values) + 1) // 2).astype(np.uint8)


def pandas_python_engine(path: Path) -> np.ndarray:
    """``pd.read_csv(sep=r"\\s+", engine="python")``, the regex separator's usual companion."""
    frame = pd.read_csv(path, sep=r"\s+", skiprows=2, header=None, engine="python")
    return (frame.iloc[:, 1:].to_numpy() > 0).astype(np.uint8)


def best_time(
    parse: Callable[[Path], np.ndarray], path: Path, repeat: int
) -> tuple[float, float, np.ndarray]:
    """The fastest of ``repeat`` runs in wall and CPU seconds, and the labels parsed."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        labels = parse(path)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus), labels


def default_path() -> Path:
    root = os.environ.get("FACEATTR_CELEBA") or str(REPO.parent / "shared" / "celeba")
    return Path(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=default_path())
    parser.add_argument("--repeat", type=int, default=3, help="runs per parser (best is kept)")
    args = parser.parse_args()
    path = args.path / "list_attr_celeba.txt" if args.path.is_dir() else args.path
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB), best of {args.repeat}, load {load}")
    print(f"{'parser':<26} {'wall s':>7} {'cpu s':>7} {'slower':>7}")
    reference_seconds, reference_cpu, reference = best_time(ours, path, args.repeat)
    print(
        f"{'faceattr read_attributes':<26} {reference_seconds:7.2f} {reference_cpu:7.2f} {1:6.1f}x"
    )
    for name, parse in [
        ("str.split loop", split_loop),
        ("torchvision-style csv", torchvision_style),
        ("pandas engine='python'", pandas_python_engine),
    ]:
        seconds, cpu, labels = best_time(parse, path, args.repeat)
        if not np.array_equal(labels, reference):
            raise SystemExit(f"{name} parsed different labels than faceattr")
        print(f"{name:<26} {seconds:7.2f} {cpu:7.2f} {seconds / reference_seconds:6.1f}x")


if __name__ == "__main__":
    main()

"""k-fold cross-validation of a recipe: seed 000's 5-fold CV, every metric as mean +- std.

``cross_validate(config, folds=5, out=OUT)`` trains one run per identity-disjoint fold
(``data.folds``, ``data.fold``: the held-out fold validates, the others train) into
``OUT/fold-<k>/`` and writes ``OUT/cv.json`` and ``OUT/cv.csv``: the validation metrics of every
fold's best model (``best/model.json``), their mean and their sample standard deviation (ddof 1).
Run again with the same ``out``, it keeps the finished folds (``fold-<k>/fold.json``), resumes an
interrupted one from its last checkpoint and refuses a fold folder trained with another config::

    config = load_config("demo_facenet", ["data.root=DEMO"])
    result = cross_validate(config, folds=5, out="cv/demo")
    result.summary["val/mean_accuracy"]   # MetricSummary(mean=..., std=...)
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from faceattr.training.atomic import atomic_write
from faceattr.training.checkpoint import load_description
from faceattr.training.config import ConfigError, TrainConfig, config_to_dict, load_config
from faceattr.training.trainer import CONFIG_FILE, train

FOLD_FILE = "fold.json"
"""Written into a fold's run folder once it is trained: the fold counts as finished."""
HEADLINE = ("val/mean_accuracy", "val/loss")
"""Metrics listed first in the tables, in this order."""

R = TypeVar("R")


@dataclass(frozen=True)
class FoldResult:
    """One trained fold: its run folder and the validation metrics of its best model."""

    fold: int
    run_dir: Path
    epoch: int | None
    """The epoch of the best model."""
    metrics: dict[str, float]
    """``val/loss``, ``val/mean_accuracy`` and ``val/acc/<attribute>`` on the held-out fold."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the run folder by name, relative to the CV folder)."""
        return {
            "fold": self.fold,
            "run_dir": self.run_dir.name,
            "epoch": self.epoch,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class MetricSummary:
    """A metric over the folds."""

    mean: float
    std: float
    """Sample standard deviation (ddof 1)."""


@dataclass(frozen=True)
class CVResult:
    """A finished cross-validation."""

    out: Path
    folds: tuple[FoldResult, ...]
    summary: dict[str, MetricSummary]
    """Every metric's mean and standard deviation over the folds, headline metrics first."""

    def table(self) -> pd.DataFrame:
        """One row per metric: its value in each fold, then ``mean`` and ``std``."""
        columns = {f"fold {r.fold}": [r.metrics[m] for m in self.summary] for r in self.folds}
        columns["mean"] = [s.mean for s in self.summary.values()]
        columns["std"] = [s.std for s in self.summary.values()]
        return pd.DataFrame(columns, index=pd.Index(list(self.summary), name="metric"))


def best_metrics(run_dir: Path) -> tuple[int | None, dict[str, float]]:
    """The epoch and the validation metrics of a run's best model (``best/model.json``)."""
    description = load_description(run_dir / "best")
    metrics = {k: v for k, v in description.metrics.items() if k.startswith("val/")}
    return description.epoch, metrics


def fold_config(config: TrainConfig, folds: int, fold: int, run_dir: Path) -> TrainConfig:
    """``config`` training fold ``fold`` of ``folds`` into the run folder ``run_dir``."""
    return replace(
        config,
        data=replace(config.data, folds=folds, fold=fold),
        trainer=replace(config.trainer, run_dir=str(run_dir)),
    )


def check_run_config(run_dir: Path, config: TrainConfig) -> bool:
    """Whether ``run_dir`` holds a run of ``config`` (False: no run yet); a run of another
    config is a :class:`ConfigError`."""
    saved = run_dir / CONFIG_FILE
    if not saved.is_file():
        return False
    if load_config(saved) != config:
        raise ConfigError(
            f"{run_dir} was trained with another config (its {CONFIG_FILE}); rerun with the same "
            "recipe and overrides, or choose another output folder"
        )
    return True


def train_fold(config: TrainConfig, folds: int, fold: int, out: Path) -> FoldResult:
    """Train fold ``fold`` of ``folds`` into ``out/fold-<fold>/``, or read it back when it is
    finished; an interrupted fold continues from its last checkpoint."""
    run_dir = out / f"fold-{fold}"
    config = fold_config(config, folds, fold, run_dir)
    started = check_run_config(run_dir, config)
    done = run_dir / FOLD_FILE
    if done.is_file():
        saved = json.loads(done.read_text())
        return FoldResult(fold, run_dir, saved["epoch"], saved["metrics"])
    train(config, resume=run_dir if started else None)
    epoch, metrics = best_metrics(run_dir)
    result = FoldResult(fold, run_dir, epoch, metrics)
    text = json.dumps(result.to_dict(), indent=2) + "\n"
    atomic_write(done, lambda file: file.write(text.encode()))
    return result


def summarise(results: Sequence[FoldResult]) -> dict[str, MetricSummary]:
    """Mean and sample standard deviation of every metric the folds share, headline first."""
    names = [m for m in results[0].metrics if all(m in r.metrics for r in results)]
    names.sort(key=lambda m: HEADLINE.index(m) if m in HEADLINE else len(HEADLINE))
    summary = {}
    for name in names:
        values = np.array([r.metrics[name] for r in results], dtype=np.float64)
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        summary[name] = MetricSummary(float(values.mean()), std)
    return summary


def _share_cores(threads: int) -> None:
    torch.set_num_threads(threads)


def run_parallel(
    function: Callable[..., R], tasks: Sequence[tuple[Any, ...]], jobs: int, description: str
) -> list[R]:
    """``function(*task)`` for every task, results in task order: in this process when ``jobs``
    is 1, else in ``jobs`` fresh (spawned) processes that share the CPU cores; a progress bar
    counts the finished tasks. ``function`` must be importable (a module-level function)."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    with tqdm(total=len(tasks), desc=description, unit="run") as bar:
        if jobs == 1:
            results = []
            for task in tasks:
                results.append(function(*task))
                bar.update()
            return results
        threads = max(1, (os.cpu_count() or 1) // jobs)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            jobs, mp_context=context, initializer=_share_cores, initargs=(threads,)
        ) as pool:
            futures = [pool.submit(function, *task) for task in tasks]
            for _ in as_completed(futures):
                bar.update()
            return [future.result() for future in futures]


def cross_validate(config: TrainConfig, folds: int, out: str | Path, jobs: int = 1) -> CVResult:
    """Train ``config`` on each of ``folds`` identity-disjoint folds of ``data.fold_splits``
    (``jobs`` at a time) into ``out``; write ``cv.json`` and ``cv.csv``."""
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for fold in range(folds):  # a wrong --out fails now, not after hours of training
        run_dir = out / f"fold-{fold}"
        check_run_config(run_dir, fold_config(config, folds, fold, run_dir))
    tasks = [(config, folds, fold, out) for fold in range(folds)]
    results = tuple(run_parallel(train_fold, tasks, jobs, "folds"))
    result = CVResult(out, results, summarise(results))
    report = {
        "folds": folds,
        "config": config_to_dict(config),
        "runs": [r.to_dict() for r in results],
        "summary": {k: vars(v) for k, v in result.summary.items()},
    }
    (out / "cv.json").write_text(json.dumps(report, indent=2) + "\n")
    result.table().to_csv(out / "cv.csv")
    return result

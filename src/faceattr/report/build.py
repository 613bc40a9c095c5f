"""Gather what a report shows into a typed :class:`ReportData`: evaluation folders (``eval.json``
+ ``predictions.npz``, written by ``faceattr evaluate``) and run folders (``metrics.csv``,
``config.yaml``, ``environment.json``, ``best/model.json``)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from faceattr.data.celeba import SPLITS, load_celeba
from faceattr.data.formats import AnnotationError
from faceattr.evaluation.evaluate import EVAL_FILE, EVAL_FORMAT, EVAL_VERSION, PREDICTIONS_FILE
from faceattr.models.base import InputConfig
from faceattr.training.checkpoint import DESCRIPTION_FILE, load_description
from faceattr.training.config import ConfigError, TrainConfig, load_config
from faceattr.training.trainer import CONFIG_FILE

METRICS_FILE = "metrics.csv"
ENVIRONMENT_FILE = "environment.json"
BASELINES = ("majority", "minority")
PREFERRED_PROTOCOLS = ("A", "D", "T", "C")
"""The protocol a single-protocol view shows first: seed 003 reports on aligned crops (A)."""

Scores = NDArray[np.float64]


@dataclass(frozen=True)
class ProtocolScores:
    """One protocol's scores in ``eval.json``: per-attribute arrays (K,) and their summaries."""

    name: str
    description: str
    count: int
    per_attribute: dict[str, Scores]
    """accuracy, error, precision, recall, f1, balanced_accuracy, support."""
    mean: dict[str, float]
    hamming_loss: float
    hamming_score: float
    averages: dict[str, dict[str, float]]
    """micro, macro, weighted, samples -> precision, recall, f1."""


@dataclass(frozen=True)
class Evaluation:
    """One evaluation folder: the scores of ``eval.json`` and the predictions of the split."""

    directory: Path
    document: dict[str, Any]
    """The whole ``eval.json``, for sections reading keys added after version 1."""
    command: str
    created: str
    run_dir: Path | None
    model_dir: Path
    model_name: str
    data_root: Path
    split: str
    protocol_dir: Path
    attributes: tuple[str, ...]
    threshold_source: str
    thresholds: Scores
    parameters: int
    flops: int
    input_size: tuple[int, int]
    baselines: dict[str, dict[str, Scores]]
    """majority, minority -> accuracy, f1 (K,): estimators fitted on the training labels."""
    protocols: dict[str, ProtocolScores]
    image_ids: NDArray[np.str_]
    labels: NDArray[np.uint8]
    """(N, K) true labels of the evaluated split, in the protocol sets' row order."""
    probabilities: dict[str, NDArray[np.float32]]
    """Protocol -> (N, K) probabilities (C: the mean over its views)."""
    decisions: dict[str, NDArray[np.uint8]]
    """Protocol -> (N, K) predicted labels: ``decisions_<P>`` of the predictions file (C: the
    views' vote), else the probabilities above the attribute's threshold."""

    @property
    def primary_protocol(self) -> str:
        """The protocol shown where one is shown (A when evaluated, then D, T, C)."""
        return next(p for p in (*PREFERRED_PROTOCOLS, *self.protocols) if p in self.protocols)


@dataclass(frozen=True)
class RunRecord:
    """One training run folder."""

    directory: Path
    history: dict[str, Scores]
    """``metrics.csv`` by column (one value per epoch; NaN where a metric was not logged)."""
    config: TrainConfig | None
    environment: dict[str, Any]
    """``environment.json`` (versions, device, git commit); empty when absent."""


@dataclass(frozen=True)
class DataSummary:
    """The dataset a model was evaluated on: present images per split (None: unreadable here)."""

    root: Path
    split_counts: dict[str, int] | None


@dataclass(frozen=True)
class ReportEntry:
    """One model of a report: its evaluation, its run, or both."""

    label: str
    evaluation: Evaluation | None
    run: RunRecord | None
    input_config: InputConfig | None = None
    data: DataSummary | None = None

    def __post_init__(self) -> None:
        if self.evaluation is None and self.run is None:
            raise ValueError("a report entry needs an evaluation or a run")

    @property
    def folder(self) -> Path:
        """The run folder, else the evaluation folder."""
        if self.run is not None:
            return self.run.directory
        assert self.evaluation is not None  # __post_init__ checked it
        return self.evaluation.directory

    @property
    def model_name(self) -> str:
        """The registry name of the model (from the evaluation or the run's recipe)."""
        if self.evaluation is not None:
            return self.evaluation.model_name
        return self.run.config.model.name if self.run and self.run.config else self.folder.name

    @property
    def data_root(self) -> Path | None:
        """The dataset evaluated on (or trained on, without an evaluation)."""
        if self.evaluation is not None:
            return self.evaluation.data_root
        return Path(self.run.config.data.root) if self.run and self.run.config else None

    @property
    def model_dir(self) -> Path:
        """The exported model: the one evaluated, else the run's ``best/``."""
        return self.evaluation.model_dir if self.evaluation else self.folder / "best"


@dataclass(frozen=True)
class ReportOptions:
    """Choices of the sample-image grid."""

    samples: int = 8
    grid_attributes: tuple[str, ...] | None = None
    """Attributes marked under each sample image; None: :data:`GRID_ATTRIBUTES` evaluated."""
    seed: int = 0
    """Seed of the sample images' random choice."""


@dataclass(frozen=True)
class ReportData:
    """Everything the section renderers read: one entry (a report) or several (a comparison)."""

    entries: tuple[ReportEntry, ...]
    options: ReportOptions = field(default_factory=ReportOptions)

    @property
    def is_comparison(self) -> bool:
        """Whether several models are reported side by side."""
        return len(self.entries) > 1

    @property
    def evaluations(self) -> tuple[tuple[str, Evaluation], ...]:
        """``(label, evaluation)`` of the entries that were evaluated."""
        return tuple((e.label, e.evaluation) for e in self.entries if e.evaluation is not None)

    @property
    def runs(self) -> tuple[tuple[str, RunRecord], ...]:
        """``(label, run)`` of the entries with a run folder."""
        return tuple((e.label, e.run) for e in self.entries if e.run is not None)


def _require(document: dict[str, Any], key: str, source: Path) -> Any:
    try:
        return document[key]
    except (KeyError, TypeError):
        raise ValueError(f"{source}: missing key {key!r}") from None


def _scores(values: Any, count: int, what: str, source: Path) -> Scores:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != (count,):
        raise ValueError(f"{source}: {what} has shape {array.shape}, expected ({count},)")
    return array


def _protocol_scores(name: str, entry: Any, count: int, source: Path) -> ProtocolScores:
    where = f"protocols.{name}"
    per_attribute = _require(entry, "per_attribute", source)
    return ProtocolScores(
        name=name,
        description=str(_require(entry, "description", source)),
        count=int(_require(entry, "count", source)),
        per_attribute={
            key: _scores(values, count, f"{where}.per_attribute.{key}", source)
            for key, values in per_attribute.items()
        },
        mean={key: float(value) for key, value in _require(entry, "mean", source).items()},
        hamming_loss=float(_require(entry, "hamming_loss", source)),
        hamming_score=float(_require(entry, "hamming_score", source)),
        averages={
            kind: {metric: float(value) for metric, value in scores.items()}
            for kind, scores in _require(entry, "averages", source).items()
        },
    )


def load_evaluation(directory: str | Path) -> Evaluation:
    """Read an evaluation folder; ``ValueError`` naming the file and key when it does not fit."""
    directory = Path(directory)
    source = directory / EVAL_FILE
    if not source.is_file():
        raise FileNotFoundError(f"{directory}: no {EVAL_FILE} (write one with faceattr evaluate)")
    document = json.loads(source.read_text())
    if document.get("format") != EVAL_FORMAT or document.get("version") != EVAL_VERSION:
        raise ValueError(f"{source}: not a {EVAL_FORMAT} version {EVAL_VERSION} file")
    attributes = tuple(str(a) for a in _require(document, "attributes", source))
    count = len(attributes)
    threshold_entry = _require(document, "thresholds", source)
    thresholds = _scores(_require(threshold_entry, "values", source), count, "thresholds", source)
    cost = _require(document, "cost", source)
    baseline_entry = _require(document, "baselines", source)
    baselines = {
        estimator: {
            metric: _scores(values, count, f"baselines.{estimator}.{metric}", source)
            for metric, values in _require(baseline_entry, estimator, source).items()
        }
        for estimator in BASELINES
    }
    protocols = {
        name: _protocol_scores(name, entry, count, source)
        for name, entry in _require(document, "protocols", source).items()
    }
    with np.load(directory / PREDICTIONS_FILE, allow_pickle=False) as predictions:
        image_ids = predictions["image_ids"]
        labels = predictions["labels"].astype(np.uint8)
        probabilities = {p: predictions[f"prob_{p}"].astype(np.float32) for p in protocols}
        stored = {
            p: predictions[f"decisions_{p}"] for p in protocols if f"decisions_{p}" in predictions
        }
    for name, values in probabilities.items():
        if values.shape != labels.shape or labels.shape != (len(image_ids), count):
            raise ValueError(
                f"{directory / PREDICTIONS_FILE}: prob_{name} {values.shape} and labels "
                f"{labels.shape} do not match {len(image_ids)} images x {count} attributes"
            )
    decisions = {
        p: stored[p].astype(np.uint8) if p in stored else (values > thresholds).astype(np.uint8)
        for p, values in probabilities.items()
    }
    run_dir = document.get("run_dir")
    return Evaluation(
        directory=directory,
        document=document,
        command=str(_require(document, "command", source)),
        created=str(_require(document, "created", source)),
        run_dir=Path(run_dir) if run_dir else None,
        model_dir=Path(_require(document, "model_dir", source)),
        model_name=str(_require(document, "model_name", source)),
        data_root=Path(_require(document, "data_root", source)),
        split=str(_require(document, "split", source)),
        protocol_dir=Path(_require(document, "protocol_dir", source)),
        attributes=attributes,
        threshold_source=str(_require(threshold_entry, "source", source)),
        thresholds=thresholds,
        parameters=int(_require(cost, "parameters", source)),
        flops=int(_require(cost, "flops", source)),
        input_size=(int(cost["input_size"][0]), int(cost["input_size"][1])),
        baselines=baselines,
        protocols=protocols,
        image_ids=image_ids,
        labels=labels,
        probabilities=probabilities,
        decisions=decisions,
    )


def is_run_dir(directory: Path) -> bool:
    """Whether ``directory`` looks like a training run folder."""
    return (directory / METRICS_FILE).is_file() or (directory / CONFIG_FILE).is_file()


def load_run(directory: str | Path) -> RunRecord:
    """Read a run folder's history, configuration and environment (each optional)."""
    directory = Path(directory)
    if not is_run_dir(directory):
        raise FileNotFoundError(f"{directory}: not a run folder (no {METRICS_FILE})")
    history: dict[str, Scores] = {}
    if (directory / METRICS_FILE).is_file():
        table = pd.read_csv(directory / METRICS_FILE)
        history = {str(c): table[c].to_numpy(dtype=np.float64) for c in table.columns}
    config = None
    if (directory / CONFIG_FILE).is_file():
        try:
            config = load_config(directory / CONFIG_FILE)
        except ConfigError as error:
            raise ValueError(f"{directory / CONFIG_FILE}: {error}") from None
    environment_file = directory / ENVIRONMENT_FILE
    environment = json.loads(environment_file.read_text()) if environment_file.is_file() else {}
    return RunRecord(directory, history, config, environment)


def data_summary(root: Path) -> DataSummary:
    """Present images per split of the dataset at ``root`` (None when it cannot be read here)."""
    try:
        data = load_celeba(root)
    except (AnnotationError, FileNotFoundError, OSError):
        return DataSummary(root, None)
    if data.partition is None:
        return DataSummary(root, None)
    return DataSummary(root, {split: len(data.split_indices(split)) for split in SPLITS})


def _input_config(model_dir: Path) -> InputConfig | None:
    if not (model_dir / DESCRIPTION_FILE).is_file():
        return None
    return load_description(model_dir).input_config


def _evaluations_in_run(run_dir: Path) -> list[Path]:
    return sorted(path.parent for path in run_dir.glob(f"*/{EVAL_FILE}"))


def open_entry(path: str | Path) -> ReportEntry:
    """An evaluation folder (with its run when that is here) or a run folder (with the one
    evaluation inside it, when there is one), labelled by its model's name."""
    path = Path(path)
    if (path / EVAL_FILE).is_file():
        evaluation = load_evaluation(path)
        run_dir = evaluation.run_dir
        run = load_run(run_dir) if run_dir is not None and is_run_dir(run_dir) else None
        return ReportEntry(evaluation.model_name, evaluation, run)
    if is_run_dir(path):
        inside = _evaluations_in_run(path)
        if len(inside) > 1:
            names = ", ".join(str(p) for p in inside)
            raise ValueError(f"{path} holds several evaluations ({names}): name the one to report")
        entry = ReportEntry("", load_evaluation(inside[0]) if inside else None, load_run(path))
        return replace(entry, label=entry.model_name)
    raise FileNotFoundError(
        f"{path}: neither an evaluation folder ({EVAL_FILE}) nor a run folder ({METRICS_FILE})"
    )


def _distinct_labels(entries: Sequence[ReportEntry]) -> list[str]:
    """Each entry's label; where two share one, with the run folder's name, or the run and
    evaluation folders' names where they share the run too."""

    def folder(entry: ReportEntry) -> str:
        runs = Counter(e.folder.name for e in entries if e.label == entry.label)
        if runs[entry.folder.name] == 1 or entry.evaluation is None:
            return entry.folder.name
        return f"{entry.folder.name}/{entry.evaluation.directory.name}"

    shared = Counter(e.label for e in entries)
    labels = [f"{e.label} ({folder(e)})" if shared[e.label] > 1 else e.label for e in entries]
    again = Counter(labels)
    return [f"{label} #{i + 1}" if again[label] > 1 else label for i, label in enumerate(labels)]


def gather(paths: Sequence[str | Path], options: ReportOptions | None = None) -> ReportData:
    """Read every evaluation or run folder of ``paths`` into one :class:`ReportData`."""
    if not paths:
        raise ValueError("name at least one evaluation or run folder")
    opened = [open_entry(path) for path in paths]
    summaries: dict[Path, DataSummary] = {}
    entries = []
    for entry, label in zip(opened, _distinct_labels(opened), strict=True):
        root = entry.data_root
        if root is not None and root not in summaries:
            summaries[root] = data_summary(root)
        entries.append(
            replace(
                entry,
                label=label,
                input_config=_input_config(entry.model_dir),
                data=summaries[root] if root is not None else None,
            )
        )
    options = options or ReportOptions()
    for entry in entries:
        names = entry.evaluation.attributes if entry.evaluation else ()
        unknown = [n for n in options.grid_attributes or () if entry.evaluation and n not in names]
        if unknown:
            raise ValueError(
                f"attributes {unknown} were not evaluated in {entry.folder}; choose from "
                f"{', '.join(names)}"
            )
    return ReportData(tuple(entries), options)

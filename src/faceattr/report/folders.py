"""Read the folders a report is made of: evaluation folders (``eval.json`` + ``predictions.npz``,
written by ``faceattr evaluate``) and run folders (``metrics.csv``, ``config.yaml``,
``environment.json``), each into a typed record."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from faceattr.data.schema import Attribute
from faceattr.evaluation.evaluate import EVAL_FILE, PREDICTIONS_FILE, read_eval_json
from faceattr.training.config import CONFIG_FILE, ConfigError, TrainConfig, load_config

METRICS_FILE = "metrics.csv"
ENVIRONMENT_FILE = "environment.json"
BASELINES = ("majority", "minority")
PREFERRED_PROTOCOLS = ("A", "D", "T", "C")
"""The protocol a single-protocol view shows first: seed 003 reports on aligned crops (A)."""

Scores = NDArray[np.float64]


@dataclass(frozen=True)
class ProtocolMetrics:
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
    protocols: dict[str, ProtocolMetrics]
    image_ids: NDArray[np.str_]
    labels: NDArray[np.uint8]
    """(N, K) true labels of the evaluated split, in the protocol sets' row order."""
    probabilities: dict[str, NDArray[np.float32]]
    """Protocol -> (N, K) probabilities (C: the mean over its views)."""
    decisions: dict[str, NDArray[np.uint8]]
    """Protocol -> (N, K) predicted labels: ``decisions_<P>`` of the predictions file (C: the
    views' vote), else the probabilities above the attribute's threshold."""
    kind_attributes: tuple[Attribute, ...] = ()
    """The categorical and numeric attributes scored (``kind_attributes`` of eval.json)."""
    kind_labels: NDArray[np.float32] | None = None
    """(N, J) their labels (class index or value; NaN: missing)."""
    kind_predictions: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    """Protocol -> (N, J) their predictions (most probable class or value)."""

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


def _protocol_metrics(name: str, entry: Any, count: int, source: Path) -> ProtocolMetrics:
    where = f"protocols.{name}"
    per_attribute = _require(entry, "per_attribute", source)
    return ProtocolMetrics(
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


Predictions = tuple[
    NDArray[np.str_],
    NDArray[np.uint8],
    dict[str, NDArray[np.float32]],
    dict[str, NDArray[np.uint8]],
]


def _read_predictions(
    path: Path, protocols: tuple[str, ...], count: int, thresholds: Scores
) -> Predictions:
    """Image ids, labels, and per protocol the probabilities and decisions (the stored
    ``decisions_<P>``, else the probabilities above ``thresholds``)."""
    with np.load(path, allow_pickle=False) as predictions:
        image_ids = predictions["image_ids"]
        labels = predictions["labels"].astype(np.uint8)
        probabilities = {p: predictions[f"prob_{p}"].astype(np.float32) for p in protocols}
        stored = {
            p: predictions[f"decisions_{p}"] for p in protocols if f"decisions_{p}" in predictions
        }
    for name, values in probabilities.items():
        if values.shape != labels.shape or labels.shape != (len(image_ids), count):
            raise ValueError(
                f"{path}: prob_{name} {values.shape} and labels {labels.shape} do not match "
                f"{len(image_ids)} images x {count} attributes"
            )
    decisions = {
        p: stored[p].astype(np.uint8) if p in stored else (values > thresholds).astype(np.uint8)
        for p, values in probabilities.items()
    }
    return image_ids, labels, probabilities, decisions


def load_evaluation(directory: str | Path) -> Evaluation:
    """Read an evaluation folder; ``ValueError`` naming the file and key when it does not fit."""
    directory = Path(directory)
    source = directory / EVAL_FILE
    if not source.is_file():
        raise FileNotFoundError(f"{directory}: no {EVAL_FILE} (write one with faceattr evaluate)")
    document = read_eval_json(source)
    attributes = tuple(str(a) for a in _require(document, "attributes", source))
    count = len(attributes)
    threshold_entry = _require(document, "thresholds", source)
    thresholds = _scores(_require(threshold_entry, "values", source), count, "thresholds", source)
    cost = _require(document, "cost", source)
    input_size = _require(cost, "input_size", source)
    baseline_entry = _require(document, "baselines", source)
    baselines = {
        estimator: {
            metric: _scores(values, count, f"baselines.{estimator}.{metric}", source)
            for metric, values in _require(baseline_entry, estimator, source).items()
        }
        for estimator in BASELINES
    }
    protocols = {
        name: _protocol_metrics(name, entry, count, source)
        for name, entry in _require(document, "protocols", source).items()
    }
    image_ids, labels, probabilities, decisions = _read_predictions(
        directory / PREDICTIONS_FILE, tuple(protocols), count, thresholds
    )
    kinds = tuple(Attribute.from_json(a) for a in document.get("kind_attributes", ()))
    kind_labels, kind_predictions = None, {}
    if kinds:
        with np.load(directory / PREDICTIONS_FILE, allow_pickle=False) as predictions:
            kind_labels = predictions["kind_labels"]
            kind_predictions = {p: predictions[f"kind_{p}"] for p in protocols}
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
        input_size=(int(input_size[0]), int(input_size[1])),
        baselines=baselines,
        protocols=protocols,
        image_ids=image_ids,
        labels=labels,
        probabilities=probabilities,
        decisions=decisions,
        kind_attributes=kinds,
        kind_labels=kind_labels,
        kind_predictions=kind_predictions,
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

"""Evaluate a trained model on seed 003's protocols: ``evaluate_model(RUN) -> EvalResult``.

The model is scored on the materialised test sets (A, C, D, T) at its own input size, with
per-attribute thresholds tuned on the validation split's protocol A crops (or the model's stored
thresholds, or 0.5), beside the majority and minority baselines fitted on the training labels.
Its probabilities go through a per-attribute calibration fitted on the same validation scores
(``calibrate``; by default only for a model without one), the thresholds tuned on the calibrated
scale; calibration error before and after, reliability diagrams and the risk-coverage curve of
an abstention band are measured on every protocol. Thresholds, calibration and those measures
are the binary attributes'; a categorical attribute is scored by accuracy, macro-F1, balanced
accuracy and its confusion matrix, a numeric one by MAE, RMSE and CS(5), beside the majority
class or the training mean and median (:mod:`faceattr.evaluation.kinds`).
:func:`write_eval` writes the evaluation folder::

    eval.json                      every metric (format "faceattr-eval", version 1)
    predictions.npz                image_ids, labels, prob_<P>, decisions_<P>, views_C, thresholds,
                                   kind_labels and kind_<P> (categorical and numeric predictions)
    error_table.csv / .md          seed 003 Table 7.1: error per attribute x protocol + majority
    classification_report_<P>.csv  seed 004's report per protocol
    calibration_<P>.csv            ECE, MCE, Brier, NLL per attribute, raw and calibrated
    reliability_<P>.png            reliability diagrams of every attribute (+ _worst_: five larger)
    risk_coverage_<P>.csv          coverage and accuracy per abstention band and attribute

Protocols are materialised once into ``$FACEATTR_CACHE/protocols/<name>-<hash>`` (default
``~/.cache/faceattr``), keyed by the dataset root, image set, split, crop size, image limit and
the landmarks and boxes of the split's images (new detections make a new folder).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import NDArray

from faceattr.data.baselines import BaselineScores, LabelArray, baseline_scores
from faceattr.data.formats import SPLIT_CODES
from faceattr.data.landmarks import detect_landmarks
from faceattr.data.loaders import DatasetSource
from faceattr.data.record import FaceDataset, cache_home
from faceattr.data.schema import Attribute, shared_names
from faceattr.evaluation.analyses import (
    model_robustness,
    write_calibration,
    write_robustness,
    write_slices,
)
from faceattr.evaluation.calibration import (
    MIN_ROWS,
    CalibrationFit,
    CalibrationMetrics,
    calibration_metrics,
    fit_calibration,
)
from faceattr.evaluation.cost import ModelCost, model_cost
from faceattr.evaluation.kinds import (
    CategoricalScores,
    NumericScores,
    categorical_baseline,
    categorical_scores,
    majority_class,
    numeric_baselines,
    numeric_scores,
)
from faceattr.evaluation.metrics import (
    AttributeMetrics,
    attribute_metrics,
    write_classification_report,
)
from faceattr.evaluation.protocols import (
    AFFACT_CROP,
    DESCRIPTIONS,
    MANIFEST_FILE,
    PROTOCOLS,
    ProtocolSet,
    crop_rule,
    load_protocol,
    materialise_protocols,
)
from faceattr.evaluation.robustness import RobustnessCurve
from faceattr.evaluation.scoring import KindScores, ProtocolScores, model_labels, score_protocol
from faceattr.evaluation.selective import RiskCoverage, risk_coverage, write_risk_coverage
from faceattr.evaluation.slices import DEFAULT_GROUPS, SliceTable, slice_metrics
from faceattr.evaluation.thresholds import (
    DEFAULT_THRESHOLD,
    ThresholdArray,
    tune_thresholds,
)
from faceattr.models import AttributeModel
from faceattr.models.calibration import Calibration
from faceattr.training.batch import CropSpec
from faceattr.training.checkpoint import (
    DESCRIPTION_FILE,
    ModelDescription,
    load_checkpoint,
    load_description,
    save_thresholds,
)

log = logging.getLogger(__name__)
EVAL_FORMAT = "faceattr-eval"
EVAL_VERSION = 1
EVAL_FILE = "eval.json"
PREDICTIONS_FILE = "predictions.npz"
RUN_CONFIG = "config.yaml"
Tune = Literal["f1", "accuracy", "none"]
TUNE_CHOICES: tuple[str, ...] = get_args(Tune)


@dataclass(frozen=True)
class ModelTarget:
    """The export folder to evaluate and the run folder it belongs to (None: a bare export)."""

    model_dir: Path
    run_dir: Path | None

    @property
    def default_out(self) -> Path:
        """``RUN/eval`` for a run's best model, ``RUN/eval-<export>`` for another export of a
        run, ``EXPORT/eval`` for a bare export."""
        if self.run_dir is None:
            return self.model_dir / "eval"
        if self.model_dir == self.run_dir / "best":
            return self.run_dir / "eval"
        return self.run_dir / f"eval-{self.model_dir.name}"


def resolve_target(path: str | Path) -> ModelTarget:
    """A run folder (its ``best/`` export) or an export folder (``model.json`` inside)."""
    path = Path(path)
    if (path / DESCRIPTION_FILE).is_file():
        parent = path.parent
        return ModelTarget(path, parent if (parent / RUN_CONFIG).is_file() else None)
    if (path / RUN_CONFIG).is_file() and (path / "best" / DESCRIPTION_FILE).is_file():
        return ModelTarget(path / "best", path)
    raise FileNotFoundError(
        f"{path} is neither a run folder (config.yaml and best/{DESCRIPTION_FILE}) nor an "
        f"export folder ({DESCRIPTION_FILE} and model.safetensors)"
    )


@dataclass(frozen=True)
class Thresholds:
    """The decision thresholds applied, and where they came from."""

    source: str
    """"val-f1", "val-accuracy", "model" (stored in model.json) or "0.5"."""
    values: ThresholdArray


@dataclass(frozen=True)
class ProtocolResult:
    """A model's scores, decisions and metrics on one protocol."""

    scores: ProtocolScores
    """The probabilities decided on: calibrated when the evaluation calibrates."""
    decisions: LabelArray
    metrics: AttributeMetrics
    raw: ProtocolScores
    """The model's own probabilities, before calibration."""
    calibration: dict[str, CalibrationMetrics]
    """"raw" and, when calibrated, "calibrated": ECE, MCE, Brier and NLL."""
    risk_coverage: RiskCoverage
    """Of the decided probabilities (protocol C: their mean over the views)."""
    kinds: dict[str, CategoricalScores | NumericScores] = field(default_factory=dict)
    """The categorical and numeric attributes' scores (empty: none)."""

    def to_dict(self) -> dict[str, Any]:
        """eval.json's entry: description, count, every metric, calibration and risk-coverage,
        and the categorical and numeric attributes' scores (``kinds``, when there are any)."""
        return {
            "description": DESCRIPTIONS[self.scores.name],
            **self.metrics.to_dict(),
            "calibration": {kind: m.to_dict() for kind, m in self.calibration.items()},
            "risk_coverage": self.risk_coverage.to_dict(),
            **({"kinds": {n: kind_json(v) for n, v in self.kinds.items()}} if self.kinds else {}),
        }


def kind_json(scores: CategoricalScores | NumericScores) -> dict[str, Any]:
    """Categorical or numeric scores as eval.json writes them (the confusion matrix as lists)."""
    if isinstance(scores, NumericScores):
        return asdict(scores)
    return {**asdict(scores), "confusion": scores.confusion.tolist()}


def kind_scores(kinds: KindScores) -> dict[str, CategoricalScores | NumericScores]:
    """Each categorical or numeric attribute's scores (labelled images only)."""
    estimates = kinds.estimates()
    scores: dict[str, CategoricalScores | NumericScores] = {}
    for j, attribute in enumerate(kinds.attributes):
        truth, guess = kinds.labels[:, j], estimates[:, j]
        if attribute.kind == "categorical":
            scores[attribute.name] = categorical_scores(truth, guess, len(attribute.classes))
        else:
            scores[attribute.name] = numeric_scores(truth, guess)
    return scores


@dataclass(frozen=True)
class KindBaseline:
    """One categorical or numeric attribute's constant predictions fitted on the training
    labels, and their scores on the test labels: ``majority`` (class index), or ``mean`` and
    ``median`` (values)."""

    constants: dict[str, float]
    scores: dict[str, CategoricalScores | NumericScores]

    def to_dict(self) -> dict[str, Any]:
        """eval.json's entry: per estimator its constant and its scores."""
        return {
            name: {"value": self.constants[name], **kind_json(score)}
            for name, score in self.scores.items()
        }


def kind_baselines(
    data: FaceDataset, kinds: KindScores, data_names: Sequence[str]
) -> dict[str, KindBaseline]:
    """The majority class, or the training mean and median, of each categorical or numeric
    attribute of ``kinds`` (dataset columns ``data_names``), fitted on the training rows of
    ``data`` (:func:`training_rows`) and scored on ``kinds``' labels."""
    train_rows, _ = training_rows(data)
    baselines: dict[str, KindBaseline] = {}
    for j, (attribute, data_name) in enumerate(zip(kinds.attributes, data_names, strict=True)):
        column = data.schema.index(data_name)
        train = model_labels(data.labels[train_rows, column], data.schema[data_name], attribute)
        truth = kinds.labels[:, j]
        if attribute.kind == "categorical":
            count = len(attribute.classes)
            baselines[attribute.name] = KindBaseline(
                {"majority": float(majority_class(train, count))},
                {"majority": categorical_baseline(train, truth, count)},
            )
        else:
            known = train[~np.isnan(train)]
            baselines[attribute.name] = KindBaseline(
                {"mean": float(known.mean()), "median": float(np.median(known))},
                dict(numeric_baselines(train, truth)),
            )
    return baselines


@dataclass(frozen=True)
class CalibrationUse:
    """The calibration applied, and where it came from."""

    source: str
    """"fitted on val-A", "model" (stored in model.json) or "none"."""
    calibration: Calibration | None
    fit: CalibrationFit | None = None

    def to_dict(self) -> dict[str, Any]:
        """eval.json's ``calibration``: source, method per attribute and the fit's choice."""
        return {
            "source": self.source,
            "methods": None if self.calibration is None else list(self.calibration.methods),
            **({"fit": self.fit.to_dict()} if self.fit is not None else {}),
        }


@dataclass(frozen=True)
class EvalResult:
    """Everything ``faceattr evaluate`` measured; :meth:`to_dict` is eval.json."""

    command: str
    created: str
    target: ModelTarget
    model_name: str
    data_root: Path
    split: str
    protocol_dir: Path
    crop: CropSpec
    """The model's crop rule, which every protocol cut."""
    attributes: tuple[str, ...]
    """The attributes scored: those the model and the dataset share."""
    thresholds: Thresholds
    calibration: CalibrationUse
    cost: ModelCost
    baselines: BaselineScores
    baseline_rows: str
    """Which training labels the baselines were fitted on."""
    protocols: dict[str, ProtocolResult]
    whole_image: dict[str, int] = field(default_factory=dict)
    """Protocol -> images cut whole, for want of landmarks and boxes (empty: none)."""
    slices: SliceTable | None = None
    """Per-attribute accuracy within subgroups, on the first protocol (``--slices``)."""
    robustness: dict[str, RobustnessCurve] | None = None
    """Accuracy under test-time rotation, scale and shift (``--robustness``)."""
    left_out: tuple[str, ...] = ()
    """The model's attributes the dataset does not label (not scored)."""
    dataset: str = ""
    """``format:root`` of the dataset scored."""
    source: DatasetSource | None = None
    """How the dataset scored is read (root, format, image set, annotation folders, seed)."""
    kinds: tuple[Attribute, ...] = ()
    """The categorical and numeric attributes scored (each protocol's ``kinds``)."""
    kind_baselines: dict[str, KindBaseline] = field(default_factory=dict)
    """Their majority-class or training mean/median baselines."""

    def to_dict(self) -> dict[str, Any]:
        """The eval.json document (format "faceattr-eval", version 1)."""
        return {
            "format": EVAL_FORMAT,
            "version": EVAL_VERSION,
            "created": self.created,
            "command": self.command,
            "run_dir": None if self.target.run_dir is None else str(self.target.run_dir),
            "model_dir": str(self.target.model_dir),
            "model_name": self.model_name,
            "data_root": str(self.data_root),
            "dataset": self.dataset,
            "dataset_source": None if self.source is None else source_json(self.source),
            "left_out": list(self.left_out),
            "split": self.split,
            "protocol_dir": str(self.protocol_dir),
            "crop": crop_rule(self.crop),
            "attributes": list(self.attributes),
            "thresholds": {
                "source": self.thresholds.source,
                "values": self.thresholds.values.tolist(),
            },
            "calibration": self.calibration.to_dict(),
            "cost": self.cost.to_dict(),
            "baselines": {
                "fitted_on": self.baseline_rows,
                "majority": {
                    "accuracy": self.baselines.majority_accuracy.tolist(),
                    "f1": self.baselines.majority_f1.tolist(),
                },
                "minority": {
                    "accuracy": self.baselines.minority_accuracy.tolist(),
                    "f1": self.baselines.minority_f1.tolist(),
                },
                "positive_class": self.baselines.positive_class.tolist(),
                **(
                    {"kinds": {n: b.to_dict() for n, b in self.kind_baselines.items()}}
                    if self.kind_baselines
                    else {}
                ),
            },
            **({"kind_attributes": [a.to_json() for a in self.kinds]} if self.kinds else {}),
            "protocols": {name: result.to_dict() for name, result in self.protocols.items()},
            "whole_image": self.whole_image,
            **({"slices": self.slices.to_dict()} if self.slices is not None else {}),
            **(
                {"robustness": {kind: c.to_dict() for kind, c in self.robustness.items()}}
                if self.robustness is not None
                else {}
            ),
        }

    def error_table(self) -> tuple[list[str], list[list[str | float]]]:
        """This evaluation's :func:`error_table`."""
        errors = {name: r.metrics.error for name, r in self.protocols.items()}
        return error_table(self.attributes, errors, self.baselines)


def error_table(
    attributes: Sequence[str], errors: dict[str, NDArray[np.float64]], baselines: BaselineScores
) -> tuple[list[str], list[list[str | float]]]:
    """Seed 003 Table 7.1: header and rows (attribute, error per protocol, majority baseline
    error) as fractions, then a ``mean`` row over the attributes."""
    header = ["attribute", *(f"error_{p}" for p in errors), "error_majority"]
    columns = [*errors.values(), 1.0 - baselines.majority_accuracy]
    rows: list[list[str | float]] = [
        [name, *(float(c[k]) for c in columns)] for k, name in enumerate(attributes)
    ]
    rows.append(["mean", *(float(np.mean(c)) for c in columns)])
    return header, rows


def fit_baselines(
    data: FaceDataset, labels: LabelArray, attributes: Sequence[str]
) -> tuple[BaselineScores, str]:
    """The majority and minority estimators fitted on the training labels of ``data`` and scored
    on ``labels`` ``(N, K)`` (columns ``attributes``), and which rows they were fitted on: those
    of the present training images, else (no training image on disk: they need only the labels)
    every training row of the annotation files (:func:`training_rows`)."""
    train_rows, rows = training_rows(data)
    train = data.labels[train_rows][:, data.schema.columns(attributes)]
    train = train[~np.isnan(train).any(axis=1)].astype(np.uint8)
    return baseline_scores(train, labels, list(attributes)), rows


def training_rows(data: FaceDataset) -> tuple[NDArray[np.intp], str]:
    """The rows baselines are fitted on, and a phrase naming them: the present training images,
    else every training row of the annotation files (baselines need only the labels)."""
    train_rows = data.split_indices("train")
    rows = f"the {len(train_rows):,} present training images"
    if len(train_rows) == 0:
        assert data.partition is not None  # split_indices raised otherwise
        train_rows = np.flatnonzero(data.partition == SPLIT_CODES["train"])
        rows = f"the labels of all {len(train_rows):,} training rows (no training image present)"
        if len(train_rows) == 0:
            raise ValueError(f"{data.root}: the partition file has no training row")
    return train_rows, rows


@dataclass(frozen=True)
class ScoringOptions:
    """How to run the model: batch size (views), device, an image limit, progress bars."""

    batch_size: int = 256
    device: str = "auto"
    limit: int | None = None
    progress: bool = True


def protocol_cache_dir(data: FaceDataset, split: str, crop: CropSpec, limit: int | None) -> Path:
    """The cache folder of ``split``'s protocols of ``data`` cut by ``crop``, keyed by the root,
    the image set, the split, the crop rule and size, the limit and the images' landmarks and
    boxes."""
    rows = data.split_indices(split)[:limit]
    key = f"{data.root.resolve()}|{data.format}|{data.image_set}|{split}|{crop}|{limit}"
    digest = hashlib.sha256(key.encode())
    digest.update(np.ascontiguousarray(data.image_ids[rows].astype(str)).tobytes())
    for geometry in (data.landmarks, data.boxes):
        if geometry is not None:
            digest.update(np.ascontiguousarray(geometry[rows], dtype=np.float64).tobytes())
    return cache_home() / "protocols" / f"{data.root.resolve().name}-{digest.hexdigest()[:12]}"


def cached_protocols(
    source: DatasetSource,
    data: FaceDataset,
    split: str,
    crop: CropSpec,
    protocols: Sequence[str],
    limit: int | None,
    progress: bool,
) -> Path:
    """A folder holding ``protocols`` of ``split`` cut by ``crop``, materialised when missing
    (with the protocols already there, so none is lost)."""
    out = protocol_cache_dir(data, split, crop, limit)
    manifest = out / MANIFEST_FILE
    present = list(json.loads(manifest.read_text())["protocols"]) if manifest.is_file() else []
    if not set(protocols) <= set(present):
        wanted = [p for p in PROTOCOLS if p in set(protocols) | set(present)]
        materialise_protocols(
            source,
            out,
            protocols=wanted,
            split=split,
            size=crop.out_size[0],
            limit=limit,
            progress=progress,
            crop=crop,
        )
    return out


def check_protocol_dir(protocol_dir: Path, split: str, crop: CropSpec) -> None:
    """Raise ``ValueError`` when ``protocol_dir`` holds another split than ``split``, or crops
    cut by another rule or at another size than ``crop``."""
    manifest = protocol_dir / MANIFEST_FILE
    if not manifest.is_file():
        raise FileNotFoundError(f"{protocol_dir}: no {MANIFEST_FILE} (faceattr data protocols)")
    stored = json.loads(manifest.read_text())
    if stored.get("split") != split:
        raise ValueError(f"{protocol_dir} holds the {stored.get('split')!r} split, not {split!r}")
    rule = stored.get("crop", crop_rule(AFFACT_CROP))
    if rule != crop_rule(crop) or stored.get("size") != crop.out_size[0]:
        raise ValueError(
            f"{protocol_dir} holds {rule.get('kind')} crops at {stored.get('size')} px; the model "
            f"needs {crop.kind} crops at {crop.out_size[0]} px (faceattr data protocols --crop "
            f"{crop.kind} --size {crop.out_size[0]})"
        )


def parse_protocols(protocols: str | Sequence[str]) -> tuple[str, ...]:
    """``"A,C"`` or ``["A", "C"]`` -> ``("A", "C")`` in the given order; unknown names raise."""
    names = protocols.split(",") if isinstance(protocols, str) else list(protocols)
    chosen = tuple(dict.fromkeys(n.strip().upper() for n in names if n.strip()))
    unknown = [p for p in chosen if p not in PROTOCOLS]
    if unknown or not chosen:
        raise ValueError(f"unknown protocols {unknown}; choose from {', '.join(PROTOCOLS)}")
    return chosen


def without_geometry(data: FaceDataset, split: str, limit: int | None) -> NDArray[np.intp]:
    """Rows of ``split``'s present images (the first ``limit``) with neither landmarks nor box."""
    rows = data.split_indices(split)[:limit]
    known = np.zeros(len(rows), dtype=bool)
    for geometry in (data.landmarks, data.boxes):
        if geometry is not None:
            known |= np.isfinite(geometry[rows].reshape(len(rows), -1)).all(axis=1)
    return rows[~known]


def source_json(source: DatasetSource) -> dict[str, Any]:
    """A dataset source as eval.json records it (``DatasetSource.of`` reads it back)."""
    return {
        "root": str(source.root),
        "format": source.format,
        "image_set": source.image_set,
        "annotations": [str(p) for p in source.annotations],
        "split_seed": source.split_seed,
    }


def dataset_of(
    description: ModelDescription,
    root: str | Path | None,
    format: str | None = None,
    annotations: Sequence[str | Path] = (),
) -> DatasetSource:
    """The dataset at ``root`` (``format`` detected unless given), else the one the model was
    trained on (its ``data`` config); the folder must exist."""
    trained = dict(description.config.get("data", {}))
    if root is None:
        if not trained.get("root"):
            raise ValueError("the model's config names no data.root: pass the dataset root")
        source = DatasetSource.of(trained)
    else:
        same = (
            Path(str(root)).expanduser().resolve()
            == Path(str(trained.get("root", ""))).expanduser().resolve()
        )
        source = DatasetSource(
            Path(root).expanduser(),
            format if format is not None else (trained.get("format") if same else None),
            trained.get("image_set", "align") if same else "align",
            tuple(Path(a) for a in annotations)
            or (tuple(Path(a) for a in trained.get("annotations") or ()) if same else ()),
            int(trained.get("split_seed", 0)),
        )
    if not source.root.is_dir():
        raise FileNotFoundError(f"dataset root {source.root} not found: pass the dataset root")
    return source


def validation_scores(
    model: AttributeModel,
    source: DatasetSource,
    data: FaceDataset,
    crop: CropSpec,
    options: ScoringOptions,
    aliases: Mapping[str, str] | None = None,
) -> ProtocolScores:
    """The model's raw probabilities on the validation split's protocol A, cut by ``crop``."""
    if len(data.split_indices("val")) == 0:
        raise ValueError(f"{data.root}: no validation images present to tune or calibrate on")
    folder = cached_protocols(source, data, "val", crop, ["A"], options.limit, options.progress)
    protocol = load_protocol(folder, "A")
    return score_protocol(
        model, protocol, options.batch_size, options.device, options.progress, aliases, data.schema
    )


def choose_calibration(
    description: ModelDescription,
    calibrate: bool | None,
    tune: Tune,
    validation: ProtocolScores | None,
) -> CalibrationUse:
    """A calibration fitted on ``validation`` (``calibrate`` True, or None for a model without
    one; none when it holds fewer than ``MIN_ROWS`` images), the model's stored one (None), or
    none (False)."""
    fit = calibrate is True or (calibrate is None and description.calibration is None)
    if fit and tune != "none":
        assert validation is not None
        if not validation.attributes:
            return CalibrationUse("none (no binary attribute)", None)
        if len(validation.labels) < MIN_ROWS:
            count = len(validation.labels)
            return CalibrationUse(f"none ({count} val images, fewer than {MIN_ROWS})", None)
        fitted = fit_calibration(
            validation.labels, validation.probabilities, validation.attributes, "val-A"
        )
        return CalibrationUse("fitted on val-A", fitted.calibration, fitted)
    if tune == "none" and (calibrate is True or (calibrate is False and description.calibration)):
        raise ValueError(
            "--tune none keeps the stored thresholds, which belong to the stored calibration: "
            "leave --calibrate/--no-calibrate out, or tune the thresholds again"
        )
    if calibrate is False or description.calibration is None:
        return CalibrationUse("none", None)
    return CalibrationUse("model", description.calibration)


def calibrated(scores: ProtocolScores, calibration: Calibration | None) -> ProtocolScores:
    """``scores`` with every view's probabilities through ``calibration`` (None: unchanged)."""
    if calibration is None:
        return scores
    chosen = calibration.select(scores.attributes)
    return replace(scores, view_probabilities=chosen.apply(scores.view_probabilities))


def choose_thresholds(
    description: ModelDescription, tune: Tune, validation: ProtocolScores | None
) -> Thresholds:
    """One threshold per binary model attribute: tuned on the (calibrated) validation scores
    (``tune`` "f1"/"accuracy"; attributes the validation set lacks keep theirs), else the model's
    stored ones, else 0.5."""
    binary = binary_names(description)
    if description.thresholds is not None:
        stored = Thresholds("model", np.asarray(description.thresholds, dtype=np.float64))
    else:
        stored = Thresholds(str(DEFAULT_THRESHOLD), np.full(len(binary), DEFAULT_THRESHOLD))
    if tune == "none":
        return stored
    assert validation is not None
    values = stored.values.copy()
    columns = [binary.index(n) for n in validation.attributes]
    values[columns] = tune_thresholds(validation.labels, validation.probabilities, tune)
    return Thresholds(f"val-{tune}", values)


def binary_names(description: ModelDescription) -> list[str]:
    """The model's binary attributes, in its order: those thresholds decide."""
    return [a.name for a in description.attribute_schema.attributes if a.kind == "binary"]


def evaluate_model(
    target: str | Path,
    *,
    root: str | Path | None = None,
    protocols: str | Sequence[str] = ("A", "C", "D", "T"),
    split: str = "test",
    tune: Tune = "accuracy",
    protocol_dir: str | Path | None = None,
    save_tuned: bool = True,
    options: ScoringOptions = ScoringOptions(),
    slices: bool = True,
    robustness: bool = False,
    calibrate: bool | None = None,
    detect: bool = False,
    format: str | None = None,
    annotations: Sequence[str | Path] = (),
    aliases: Mapping[str, str] | None = None,
) -> EvalResult:
    """Score the model of ``target`` (a run or export folder) on ``protocols`` of ``split``.

    ``root`` defaults to the model's training dataset; another dataset (``format`` detected
    unless given, ``annotations`` folders) is scored on the attributes the two share by name
    (``aliases``: dataset name -> model name), the others named in the result;
    ``protocol_dir`` (``faceattr data protocols``) replaces the cached protocols; ``calibrate``
    picks the calibration (see :func:`choose_calibration`) and ``tune`` the thresholds on its
    scale (see :func:`choose_thresholds`), both written into the export's model.json when
    ``save_tuned``;
    ``slices`` adds the subgroup accuracies of the first protocol, ``robustness`` the curves
    under test-time rotation, scale and shift (the split's faces as the model was trained on).
    Images of the split without landmarks or a box are cut whole for every protocol: a warning
    says so, or ``detect`` runs the face detector first (``faceattr data landmarks``).
    """
    if tune not in TUNE_CHOICES:
        raise ValueError(f"unknown tuning {tune!r}; choose from {', '.join(TUNE_CHOICES)}")
    chosen = parse_protocols(protocols)
    resolved = resolve_target(target)
    description = load_description(resolved.model_dir)
    model = load_checkpoint(resolved.model_dir)
    height, width = model.input_config.size
    if height != width:
        raise ValueError(f"protocol crops are square; {description.model_name} is {height}x{width}")
    source = dataset_of(description, root, format, annotations)
    data_root = source.root
    data = source.load()
    lacking = len(without_geometry(data, split, options.limit))
    if lacking and detect:
        detect_landmarks(source, progress=options.progress)
        data = source.load()
    elif lacking:
        log.warning(
            "%d %s images of %s have no landmarks or box: they are scored as whole images "
            "(run `faceattr data landmarks %s` or pass --detect)",
            lacking,
            split,
            data_root,
            data_root,
        )
    crop = CropSpec.of_config(description.config.get("data", {}), (height, width))
    if protocol_dir is None:
        folder = cached_protocols(
            source, data, split, crop, chosen, options.limit, options.progress
        )
    else:
        folder = Path(protocol_dir)
        check_protocol_dir(folder, split, crop)
    validation = (
        None if tune == "none" else validation_scores(model, source, data, crop, options, aliases)
    )
    use = choose_calibration(description, calibrate, tune, validation)
    thresholds = choose_thresholds(
        description, tune, None if validation is None else calibrated(validation, use.calibration)
    )
    complete = validation is not None and validation.attributes == tuple(model.attributes)
    if save_tuned and thresholds.source.startswith("val-") and complete:
        save_thresholds(
            resolved.model_dir, thresholds.values.tolist(), thresholds.source, use.calibration
        )
    results: dict[str, ProtocolResult] = {}
    slice_table = None
    for name in chosen:
        protocol = load_protocol(folder, name)
        if len(protocol) == 0:
            raise ValueError(f"{folder}: protocol {name} holds no images")
        raw = score_protocol(
            model,
            protocol,
            options.batch_size,
            options.device,
            options.progress,
            aliases,
            data.schema,
        )
        names = raw.attributes
        scores = calibrated(raw, use.calibration)
        chosen_thresholds = thresholds.values[[binary_names(description).index(n) for n in names]]
        decisions = scores.decisions(chosen_thresholds)
        metrics = attribute_metrics(scores.labels, decisions, names)
        measured = {"raw": calibration_metrics(raw.labels, raw.probabilities, names)}
        if use.calibration is not None:
            measured["calibrated"] = calibration_metrics(scores.labels, scores.probabilities, names)
        curve = risk_coverage(scores.labels, scores.probabilities, chosen_thresholds, names)
        per_kind = {} if raw.kinds is None else kind_scores(raw.kinds)
        results[name] = ProtocolResult(scores, decisions, metrics, raw, measured, curve, per_kind)
        if slices and slice_table is None:
            slice_table = subgroup_table(scores, decisions, protocol)
    evaluated = next(iter(results.values())).scores
    test_labels = evaluated.labels
    manifest = json.loads((folder / MANIFEST_FILE).read_text())["protocols"]
    whole = {p: int(manifest[p]["crop_counts"]["whole_image"]) for p in chosen}
    pairs = shared_names(model.attributes, data.attribute_names, aliases)
    baselines, baseline_rows = fit_baselines(
        data, test_labels, [pairs[n] for n in evaluated.attributes]
    )
    scored_kinds = evaluated.kinds
    kinds = () if scored_kinds is None else scored_kinds.attributes
    fitted_kinds = {}
    if scored_kinds is not None:
        fitted_kinds = kind_baselines(data, scored_kinds, [pairs[a.name] for a in kinds])
    curves = None
    if robustness and evaluated.attributes != tuple(model.attributes):
        raise ValueError("--robustness needs a dataset that labels every attribute of the model")
    if robustness:
        curves = model_robustness(
            model, description, data_root, split, thresholds.values, options.limit, options.progress
        )
    return EvalResult(
        command=equivalent_command(
            target,
            root,
            chosen,
            split,
            tune,
            protocol_dir,
            save_tuned,
            options,
            slices,
            robustness,
            calibrate,
        ),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        target=resolved,
        model_name=description.model_name,
        data_root=data_root,
        split=split,
        protocol_dir=folder,
        crop=crop,
        attributes=evaluated.attributes,
        left_out=tuple(
            n
            for n in model.attributes
            if n not in evaluated.attributes and n not in {a.name for a in kinds}
        ),
        dataset=f"{data.format}:{data_root}",
        source=source,
        thresholds=thresholds,
        calibration=use,
        cost=model_cost(model),
        baselines=baselines,
        baseline_rows=baseline_rows,
        protocols=results,
        whole_image={p: n for p, n in whole.items() if n},
        slices=slice_table,
        robustness=curves,
        kinds=kinds,
        kind_baselines=fitted_kinds,
    )


def subgroup_table(
    scores: ProtocolScores, decisions: LabelArray, protocol: ProtocolSet
) -> SliceTable | None:
    """Accuracy within the subgroups of :data:`DEFAULT_GROUPS` that the model or the dataset
    labels (for every scored face); None when there are none."""
    full = protocol.labels if scores.rows is None else protocol.labels[scores.rows]
    groups = [
        g
        for g in DEFAULT_GROUPS
        if g in scores.attributes
        or (g in protocol.attributes and not np.isnan(full[:, protocol.attributes.index(g)]).any())
    ]
    if not groups:
        return None
    columns = [protocol.attributes.index(g) for g in groups if g in protocol.attributes]
    usable = np.nan_to_num(full, nan=0.0).astype(np.uint8)
    known = [n for n in protocol.attributes if protocol.attributes.index(n) in columns]
    return slice_metrics(
        scores.labels,
        decisions,
        scores.attributes,
        by=groups,
        all_labels=usable[:, [protocol.attributes.index(n) for n in known]] if known else None,
        all_attributes=known,
    )


def equivalent_command(
    target: str | Path,
    root: str | Path | None,
    protocols: Sequence[str],
    split: str,
    tune: str,
    protocol_dir: str | Path | None,
    save_tuned: bool,
    options: ScoringOptions,
    slices: bool = True,
    robustness: bool = False,
    calibrate: bool | None = None,
) -> str:
    """The ``faceattr evaluate`` command line that repeats an evaluation."""
    words = ["faceattr", "evaluate", str(target), "--protocols", ",".join(protocols)]
    words += ["--split", split, "--tune", tune, "--batch-size", str(options.batch_size)]
    words += ["--device", options.device]
    for flag, value in (
        ("--root", root),
        ("--protocol-dir", protocol_dir),
        ("--limit", options.limit),
    ):
        if value is not None:
            words += [flag, str(value)]
    if not save_tuned:
        words.append("--no-save-thresholds")
    if not slices:
        words.append("--no-slices")
    if robustness:
        words.append("--robustness")
    if calibrate is not None:
        words.append("--calibrate" if calibrate else "--no-calibrate")
    return shlex.join(words)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table, first column left-aligned, the others right."""
    lines = [
        "| " + " | ".join(header) + " |",
        "| --- |" + " ---: |" * (len(header) - 1),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    return "\n".join(lines) + "\n"


def format_error_table(result: EvalResult) -> str:
    """The error table in percent as Markdown (seed 003 Table 7.1, majority baseline beside)."""
    header, rows = result.error_table()
    names = ["attribute", *(h.removeprefix("error_") for h in header[1:])]
    cells = [[str(row[0]), *(f"{100 * float(v):.2f}" for v in row[1:])] for row in rows]
    return markdown_table(names, cells)


def format_kind_table(result: EvalResult) -> str:
    """The categorical and numeric attributes' scores per protocol, beside their baselines, as
    Markdown ("" when there are none)."""
    rows: list[list[str]] = []
    for attribute in result.kinds:
        name, baseline = attribute.name, result.kind_baselines[attribute.name].scores
        for protocol, scored in result.protocols.items():
            score = scored.kinds[name]
            if isinstance(score, CategoricalScores):
                cells = [f"accuracy {100 * score.accuracy:.2f}%", f"macro-F1 {score.macro_f1:.3f}"]
                cells.append(f"balanced accuracy {100 * score.balanced_accuracy:.2f}%")
            else:
                unit = f" {attribute.unit}" if attribute.unit else ""
                cells = [f"MAE {score.mae:.2f}{unit}", f"RMSE {score.rmse:.2f}"]
                cells.append(f"CS({score.tolerance:g}) {100 * score.cs:.1f}%")
            against = ", ".join(
                f"{b} {100 * s.accuracy:.2f}%"
                if isinstance(s, CategoricalScores)
                else f"{b} MAE {s.mae:.2f}"
                for b, s in baseline.items()
            )
            rows.append([name, protocol, str(score.count), ", ".join(cells), against])
    if not rows:
        return ""
    header = ["attribute", "protocol", "images", "scores", "baselines"]
    return markdown_table(header, rows)


def format_calibration(result: EvalResult) -> str:
    """Console lines: the calibration used, and per protocol the mean ECE (and NLL) before and
    after it and the risk-coverage area."""
    use = result.calibration
    lines = [f"calibration: {use.source}"]
    if use.calibration is not None:
        methods = use.calibration.methods
        wins = ", ".join(f"{m} {methods.count(m)}" for m in dict.fromkeys(methods))
        lines[0] += f" ({wins})"
    for name, protocol in result.protocols.items():
        parts = [
            f"{kind} ECE {m.mean()['ece']:.4f} NLL {m.mean()['nll']:.4f}"
            for kind, m in protocol.calibration.items()
        ]
        bins = protocol.calibration["raw"].bins
        area = protocol.risk_coverage.area.mean()
        lines.append(
            f"  {name}: mean over attributes ({bins} equal-mass bins): {'; '.join(parts)}; "
            f"risk-coverage area {area:.4f}"
        )
    return "\n".join(lines)


def read_eval_json(file: str | Path) -> dict[str, Any]:
    """An ``eval.json`` as a dict; ``ValueError`` naming the file (and line) when it is not
    valid JSON or not this format and version."""
    file = Path(file)
    try:
        document = json.loads(file.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{file}:{error.lineno}: not JSON ({error.msg})") from None
    if (
        not isinstance(document, dict)
        or document.get("format") != EVAL_FORMAT
        or document.get("version") != EVAL_VERSION
    ):
        raise ValueError(f"{file}: not a {EVAL_FORMAT} version {EVAL_VERSION} file")
    return document


def write_eval(result: EvalResult, out: str | Path) -> dict[str, Path]:
    """Write eval.json, predictions.npz, error_table.csv/.md and the classification reports."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = {"eval": out / EVAL_FILE, "predictions": out / PREDICTIONS_FILE}
    written["eval"].write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    first = next(iter(result.protocols.values())).scores
    arrays: dict[str, np.ndarray] = {
        "image_ids": first.image_ids,
        "labels": first.labels,
        "thresholds": result.thresholds.values,
    }
    if first.kinds is not None:
        arrays["kind_labels"] = first.kinds.labels
    for name, protocol in result.protocols.items():
        if protocol.scores.kinds is not None:
            arrays[f"kind_{name}"] = protocol.scores.kinds.estimates()
        arrays[f"prob_{name}"] = protocol.scores.probabilities
        if protocol.raw is not protocol.scores:
            arrays[f"raw_prob_{name}"] = protocol.raw.probabilities
        arrays[f"decisions_{name}"] = protocol.decisions
        if protocol.scores.view_probabilities.shape[1] > 1:
            arrays[f"views_{name}"] = protocol.scores.view_probabilities
    np.savez_compressed(written["predictions"], **arrays)  # type: ignore[arg-type]
    header, rows = result.error_table()
    written["error_table_csv"] = out / "error_table.csv"
    with written["error_table_csv"].open("w", newline="") as file:
        csv.writer(file).writerows([header, *rows])
    written["error_table_md"] = out / "error_table.md"
    written["error_table_md"].write_text(
        f"Error (%) on the {result.split} split, {result.model_name}, thresholds "
        f"{result.thresholds.source}\n\n" + format_error_table(result)
    )
    for name, protocol in result.protocols.items():
        path = out / f"classification_report_{name}.csv"
        written[f"classification_report_{name}"] = write_classification_report(
            protocol.metrics, path
        )
        curves = {"raw": protocol.raw.probabilities}
        if protocol.raw is not protocol.scores:
            curves["calibrated"] = protocol.scores.probabilities
        written.update(
            write_calibration(name, protocol.scores.labels, curves, protocol.calibration, out)
        )
        written[f"risk_coverage_{name}"] = write_risk_coverage(
            protocol.risk_coverage, out / f"risk_coverage_{name}.csv"
        )
    if result.slices is not None:
        written.update(write_slices(result.slices, out))
    if result.robustness is not None:
        written.update(write_robustness(result.robustness, result.model_name, out))
    return written

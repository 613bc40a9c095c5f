"""Gather what a report shows into a typed :class:`ReportData`: one entry per evaluation or run
folder named (see :mod:`faceattr.report.folders`), labelled, with its data and input described."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from faceattr.data.formats import AnnotationError
from faceattr.data.loaders import DatasetSource
from faceattr.data.record import SPLITS, DatasetError
from faceattr.evaluation.evaluate import EVAL_FILE
from faceattr.models.base import InputConfig
from faceattr.report.folders import (
    METRICS_FILE,
    Evaluation,
    RunRecord,
    is_run_dir,
    load_evaluation,
    load_run,
)
from faceattr.training.checkpoint import DESCRIPTION_FILE, load_description


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
        """The dataset evaluated on (or trained on, without an evaluation; None for a run of
        several datasets)."""
        if self.evaluation is not None:
            return self.evaluation.data_root
        root = self.run.config.data.root if self.run and self.run.config else None
        return Path(root) if root is not None else None

    @property
    def source(self) -> Path:
        """The folder the entry was read from: the evaluation folder, else the run folder."""
        return self.evaluation.directory if self.evaluation else self.folder

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


def data_summary(root: Path, source: Mapping[str, Any] | None = None) -> DataSummary:
    """Present images per split of the dataset at ``root``, read as ``source`` (eval.json's
    ``dataset_source``) says when given (None when it cannot be read here)."""
    try:
        data = DatasetSource.of(source if source is not None else root).load()
    except (AnnotationError, DatasetError, FileNotFoundError, OSError, ValueError):
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
    """Each entry's label; where two share one, with its run folder's name, or its evaluation
    folder's name where they share the run too."""

    def folder(entry: ReportEntry) -> str:
        runs = Counter(e.folder.name for e in entries if e.label == entry.label)
        if runs[entry.folder.name] == 1 or entry.evaluation is None:
            return entry.folder.name
        return entry.evaluation.directory.name

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
            document = entry.evaluation.document if entry.evaluation is not None else {}
            summaries[root] = data_summary(root, document.get("dataset_source"))
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
                f"attributes {unknown} were not evaluated in {entry.source}; choose from "
                f"{', '.join(names)}"
            )
    return ReportData(tuple(entries), options)

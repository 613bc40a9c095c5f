"""Put evaluations side by side: ``compare_evals(paths) -> Comparison``, ``write_comparison``.

Each path is an evaluation folder (``eval.json`` inside), the ``eval.json`` itself, or a run
folder whose ``eval/`` holds one (``faceattr evaluate RUN`` writes it). The comparison writes::

    compare.csv / .md     one row per model: cost, thresholds and the mean error and accuracy on
                          each protocol, with the majority baseline's mean error
    compare_attributes.csv / .md   error per attribute (rows) x model and protocol (columns)
    compare.json          both tables' numbers

Models evaluated on other attribute lists leave blanks where an attribute is missing; means are
over each model's own attributes. The majority baseline of an attribute is the first
evaluation's that has it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from faceattr.evaluation.evaluate import EVAL_FILE, EVAL_FORMAT, markdown_table, read_eval_json
from faceattr.evaluation.protocols import PROTOCOLS

COMPARE_FORMAT = "faceattr-compare"


@dataclass(frozen=True)
class EvalSummary:
    """What the comparison reads from one eval.json."""

    label: str
    """A name unique within the comparison (the run folder's name)."""
    path: Path
    model_name: str
    attributes: tuple[str, ...]
    thresholds: str
    parameters: int
    flops: int
    error: dict[str, dict[str, float]]
    """Protocol -> attribute -> error."""
    mean: dict[str, dict[str, float]]
    """Protocol -> eval.json's mean metrics (accuracy, error, f1, ...)."""
    majority_error: dict[str, float]
    """Attribute -> error of the majority baseline."""
    dataset: str = ""
    """``format:root`` and split of the data scored (in-domain or another dataset)."""


def find_eval(path: str | Path) -> Path:
    """The eval.json of an evaluation folder, a run folder (``eval/``) or the file itself."""
    path = Path(path)
    for candidate in (path, path / EVAL_FILE, path / "eval" / EVAL_FILE):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {EVAL_FILE} at {path} (run `faceattr evaluate {path}` first)")


def read_summary(path: str | Path, label: str) -> EvalSummary:
    """Read an eval.json (format "faceattr-eval" version 1) into an :class:`EvalSummary`."""
    file = find_eval(path)
    data = read_eval_json(file)
    try:
        names = tuple(data["attributes"])
        majority = data["baselines"]["majority"]["accuracy"]
        protocols = data["protocols"]
        return EvalSummary(
            label=label,
            path=file,
            model_name=str(data["model_name"]),
            attributes=names,
            thresholds=str(data["thresholds"]["source"]),
            parameters=int(data["cost"]["parameters"]),
            flops=int(data["cost"]["flops"]),
            error={
                p: dict(zip(names, v["per_attribute"]["error"], strict=True))
                for p, v in protocols.items()
            },
            mean={p: dict(v["mean"]) for p, v in protocols.items()},
            majority_error={n: 1.0 - float(a) for n, a in zip(names, majority, strict=True)},
            dataset=f"{data.get('dataset') or data.get('data_root', '')} ({data.get('split', '')})",
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{file}: bad {EVAL_FORMAT} file ({error!r})") from None


def default_label(eval_file: Path) -> str:
    """The run folder's name for ``RUN/eval/eval.json``, else the evaluation folder's."""
    run_dir = read_eval_json(eval_file).get("run_dir")
    return Path(run_dir).name if run_dir else eval_file.parent.name


@dataclass(frozen=True)
class Comparison:
    """Several evaluations and the protocols and attributes any of them has."""

    evals: tuple[EvalSummary, ...]
    protocols: tuple[str, ...]
    attributes: tuple[str, ...]

    def summary_table(self) -> tuple[list[str], list[list[Any]]]:
        """One row per model: label, model, parameters, FLOPs, thresholds, then mean error and
        accuracy per protocol (blank where not evaluated), then the majority baseline error."""
        header = [
            "model",
            "model_name",
            "dataset",
            "attributes",
            "parameters",
            "flops",
            "thresholds",
        ]
        for p in self.protocols:
            header += [f"error_{p}", f"accuracy_{p}"]
        header.append("error_majority")
        rows = []
        for e in self.evals:
            row: list[Any] = [
                e.label,
                e.model_name,
                e.dataset,
                len(e.attributes),
                e.parameters,
                e.flops,
                e.thresholds,
            ]
            for p in self.protocols:
                mean = e.mean.get(p)
                row += ["", ""] if mean is None else [mean["error"], mean["accuracy"]]
            row.append(sum(e.majority_error.values()) / len(e.majority_error))
            rows.append(row)
        return header, rows

    def attribute_table(self) -> tuple[list[str], list[list[Any]]]:
        """Error per attribute (rows) x model/protocol (columns ``<label>/<P>``), then the
        majority baseline's error."""
        pairs = [(e, p) for e in self.evals for p in self.protocols if p in e.error]
        header = ["attribute", *(f"{e.label}/{p}" for e, p in pairs), "majority"]
        rows = []
        for name in self.attributes:
            cells: list[Any] = [e.error[p].get(name, "") for e, p in pairs]
            majority = next(e.majority_error[name] for e in self.evals if name in e.majority_error)
            rows.append([name, *cells, majority])
        return header, rows

    def to_dict(self) -> dict[str, Any]:
        """compare.json: format, attributes, protocols, and per model its cost, means and
        per-attribute errors."""
        return {
            "format": COMPARE_FORMAT,
            "version": 1,
            "protocols": list(self.protocols),
            "attributes": list(self.attributes),
            "models": [
                {
                    "label": e.label,
                    "eval": str(e.path),
                    "model_name": e.model_name,
                    "parameters": e.parameters,
                    "flops": e.flops,
                    "thresholds": e.thresholds,
                    "mean": e.mean,
                    "error": e.error,
                    "majority_error": e.majority_error,
                }
                for e in self.evals
            ],
        }


def compare_evals(paths: Sequence[str | Path], labels: Sequence[str] | None = None) -> Comparison:
    """Read the evaluations at ``paths`` (see :func:`find_eval`); ``labels`` name them (default:
    the run folders' names, made unique with ``#2``, ``#3``...)."""
    if not paths:
        raise ValueError("nothing to compare: give at least one evaluation")
    if labels is not None and len(labels) != len(paths):
        raise ValueError(f"{len(labels)} labels for {len(paths)} evaluations")
    chosen = list(labels) if labels is not None else [default_label(find_eval(p)) for p in paths]
    seen: dict[str, int] = {}
    unique = []
    for label in chosen:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    evals = tuple(read_summary(p, label) for p, label in zip(paths, unique, strict=True))
    present = {p for e in evals for p in e.error}
    names = dict.fromkeys(n for e in evals for n in e.attributes)  # first model's order first
    return Comparison(
        evals=evals,
        protocols=tuple(p for p in PROTOCOLS if p in present),
        attributes=tuple(names),
    )


def _percent(value: Any) -> str:
    return f"{100 * value:.2f}" if isinstance(value, float) else str(value)


def write_comparison(comparison: Comparison, out: str | Path) -> dict[str, Path]:
    """Write compare.csv/.md, compare_attributes.csv/.md and compare.json into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    tables = {
        "compare": comparison.summary_table(),
        "compare_attributes": comparison.attribute_table(),
    }
    for stem, (header, rows) in tables.items():
        written[f"{stem}_csv"] = out / f"{stem}.csv"
        with written[f"{stem}_csv"].open("w", newline="") as file:
            csv.writer(file).writerows([header, *rows])
        written[f"{stem}_md"] = out / f"{stem}.md"
        cells = [[_percent(v) for v in row] for row in rows]
        written[f"{stem}_md"].write_text(
            "Errors and accuracies in percent.\n\n" + markdown_table(header, cells)
        )
    written["json"] = out / "compare.json"
    written["json"].write_text(json.dumps(comparison.to_dict(), indent=1) + "\n")
    return written

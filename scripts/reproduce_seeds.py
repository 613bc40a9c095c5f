"""The seed reproduction table: evaluate trained runs of the seed recipes, print their figures
beside the seeds' printed ones.

    python scripts/reproduce_seeds.py RUN [RUN ...] [--out table.md] [--limit N] [--reuse]

Each RUN is a run folder of a packaged seed recipe (``faceattr train RECIPE ...``). Every run is
scored by ``faceattr evaluate``'s code on the test split of its own data root, on its own crops
(thresholds tuned on the val split: for accuracy, or for F1 where the seed tuned for F1), into
``RUN/eval``; the table gives the seed's own metrics (seed 000: gender accuracy and the five
F1s; seed 001: hamming score and loss; seed 002: Male/Smiling/Young accuracy; seed 003: error on
A/C/D/T; seed 004: accuracy and the weighted precision/recall/F1 of its classification report),
the majority baseline, the training budget (data, input size, epochs, minutes, start) and the
command of the run.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from faceattr.data.loaders import load_dataset
from faceattr.evaluation.evaluate import ScoringOptions, Tune, evaluate_model, write_eval

SEED000_FIVE = ["Mustache", "Eyeglasses", "No_Beard", "Wearing_Hat", "Bald"]


@dataclass(frozen=True)
class Seed:
    """How one seed reports its system: which protocols and thresholds, and its figures."""

    name: str
    protocols: str
    tune: Tune
    printed: Callable[[dict[str, Any]], str]
    """The seed's printed figures for a run's config."""
    measured: Callable[[dict[str, Any]], str]
    """Our figures from an eval.json."""


def _per_attribute(evaluation: dict[str, Any], protocol: str, metric: str) -> dict[str, float]:
    scores = evaluation["protocols"][protocol]["per_attribute"][metric]
    return dict(zip(evaluation["attributes"], scores, strict=True))


def weighted_f1(evaluation: dict[str, Any], protocol: str) -> dict[str, float]:
    """Per attribute, the F1 of both classes averaged by support (scikit-learn's
    ``f1_score(average="weighted")`` of one binary attribute): the F1 seed 000 prints."""
    confusion = evaluation["protocols"][protocol]["confusion"]
    tp, fp, fn, tn = (np.asarray(confusion[k], dtype=np.float64) for k in ("tp", "fp", "fn", "tn"))
    positive = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    negative = 2 * tn / np.maximum(2 * tn + fn + fp, 1)
    total = tp + fp + fn + tn
    values = ((tp + fn) * positive + (tn + fp) * negative) / total
    return dict(zip(evaluation["attributes"], values.tolist(), strict=True))


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _seed000_measured(evaluation: dict[str, Any]) -> str:
    accuracy = _per_attribute(evaluation, "A", "accuracy")
    f1 = weighted_f1(evaluation, "A")
    parts = [f"gender {_pct(accuracy['Male'])}"] if "Male" in accuracy else []
    parts += [f"{name} {_pct(f1[name])}" for name in SEED000_FIVE]
    return "A: " + ", ".join(parts) + " (F1 weighted over both classes)"


def _seed000_printed(config: dict[str, Any]) -> str:
    if config["model"]["name"] == "facenet-bis":
        return "Mustache 95.8, Eyeglasses 98.1, No_Beard 92.1, Wearing_Hat 97.7, Bald 98.2"
    if config["data"]["crop"] == "seed000-b":
        return (
            "gender 95.2, Mustache 95.7, Eyeglasses 97.6, No_Beard 91.3, Wearing_Hat 97.5, "
            "Bald 98.0"
        )
    return "gender 94.1, Mustache 95.7, Eyeglasses 97.9, No_Beard 90.8, Wearing_Hat 97.1, Bald 98.1"


def _averaged(protocol: dict[str, Any], average: str) -> str:
    scores = protocol["averages"][average]
    values = "/".join(f"{scores[k]:.3f}" for k in ("precision", "recall", "f1"))
    return f"{average} P/R/F1 {values}"


def _seed001_measured(evaluation: dict[str, Any]) -> str:
    a = evaluation["protocols"]["A"]
    return (
        f"A: hamming score {a['hamming_score']:.3f}, hamming loss {a['hamming_loss']:.3f}, "
        f"{_averaged(a, 'micro')}"
    )


def _seed001_printed(config: dict[str, Any]) -> str:
    if config["model"]["name"] == "scratch-cnn":
        return "hamming score 0.571, hamming loss 0.112, P/R/F1 0.668/0.804/0.715"
    return "hamming score 0.578, hamming loss 0.112, P/R/F1 0.672/0.805/0.717"


def _seed002_measured(evaluation: dict[str, Any]) -> str:
    accuracy = _per_attribute(evaluation, "A", "accuracy")
    return "A: " + ", ".join(f"{n} {_pct(accuracy[n])}" for n in ("Male", "Smiling", "Young"))


def _seed003_measured(evaluation: dict[str, Any]) -> str:
    errors = {p: 1.0 - v["mean"]["accuracy"] for p, v in evaluation["protocols"].items()}
    return "error " + ", ".join(f"{p} {_pct(e)}" for p, e in errors.items())


def _seed004_measured(evaluation: dict[str, Any]) -> str:
    return f"A: {_averaged(evaluation['protocols']['A'], 'weighted')}"


def _seed004_printed(config: dict[str, Any]) -> str:
    if config["model"]["name"] == "resnet50-classweights":
        return "val accuracy 91.9 (epoch 8; its report's figures are images)"
    return "val accuracy 91.6 (epoch 8; its report's figures are images)"


SEEDS = {
    "facenet-mtl": Seed("000", "A,D", "accuracy", _seed000_printed, _seed000_measured),
    "facenet-bis": Seed("000", "A,D", "accuracy", _seed000_printed, _seed000_measured),
    "scratch-cnn": Seed("001", "A,D", "f1", _seed001_printed, _seed001_measured),
    "xception-transfer": Seed("001", "A,D", "f1", _seed001_printed, _seed001_measured),
    "efficientnetv2-multioutput": Seed(
        "002",
        "A,D",
        "accuracy",
        lambda _: "val Male 96.7, Smiling 85.0, Young 85.9 (its training log)",
        _seed002_measured,
    ),
    "resnet50-affact": Seed(
        "003",
        "A,C,D,T",
        "accuracy",
        lambda _: "error A 8.21, C 8.32, D 8.38, T 8.44",
        _seed003_measured,
    ),
    "resnet50-affact-ext": Seed(
        "003",
        "A,C,D,T",
        "accuracy",
        lambda _: "error A 8.21, C 8.32, D 8.38, T 8.44 (AFFACT)",
        _seed003_measured,
    ),
    "resnet50-classweights": Seed("004", "A,D", "accuracy", _seed004_printed, _seed004_measured),
    "densenet121-classweights": Seed("004", "A,D", "accuracy", _seed004_printed, _seed004_measured),
}
"""Registry name of a seed recipe's network -> how its seed reports it."""


def budget(run: Path, config: dict[str, Any], present: int) -> str:
    """The training budget of a run: images, input size, epochs, minutes, where weights began."""
    with (run / "metrics.csv").open() as file:
        rows = [r for r in csv.DictReader(file) if r.get("val/mean_accuracy")]
    data, model = config["data"], config["model"]
    images = f"{min(data.get('limit_train') or present, present):,} train images"
    description = json.loads((run / "best" / "model.json").read_text())
    size = "x".join(str(s) for s in description["input_config"]["size"])
    start = model.get("pretrained") or (f"init {model['init']}" if model.get("init") else "random")
    limit = config["trainer"].get("max_minutes")
    cut = limit and len(rows) < config["trainer"]["epochs"]
    minutes = f", cut at {limit:g} min" if cut else ""
    return f"{images}, {size} px, {len(rows)} epoch(s){minutes}, start: {start}"


def best_val(run: Path) -> float:
    """The best epoch's val mean accuracy, as the trainer measured it."""
    description = json.loads((run / "best" / "model.json").read_text())
    return float(description["metrics"]["val/mean_accuracy"])


def evaluation_of(run: Path, seed: Seed, limit: int | None, reuse: bool) -> dict[str, Any]:
    """The run's test evaluation as its seed reports it: ``RUN/eval/eval.json`` when ``reuse``
    (an earlier call's), else scored now and written there."""
    if reuse:
        loaded: dict[str, Any] = json.loads((run / "eval" / "eval.json").read_text())
        return loaded
    result = evaluate_model(
        run,
        protocols=seed.protocols,
        split="test",
        tune=seed.tune,
        options=ScoringOptions(limit=limit),
        slices=False,
    )
    write_eval(result, run / "eval")
    return result.to_dict()


def reproduce(run: Path, limit: int | None, reuse: bool = False) -> dict[str, str]:
    """Evaluate one run as its seed reports it; its table row."""
    loaded = OmegaConf.to_container(OmegaConf.load(run / "config.yaml"))
    assert isinstance(loaded, dict)
    config = {str(k): v for k, v in loaded.items()}
    seed = SEEDS[config["model"]["name"]]
    evaluation = evaluation_of(run, seed, limit, reuse)
    majority = float(np.mean(evaluation["baselines"]["majority"]["accuracy"]))
    test = evaluation["protocols"]["A"]["mean"]
    command = json.loads((run / "environment.json").read_text())["argv"]
    present = len(load_dataset(evaluation["data_root"]).split_indices("train"))
    return {
        "seed": seed.name,
        "recipe": f"`{command[2]}` ({config['data']['crop']} crop)",
        "budget": budget(run, config, present),
        "val mean accuracy at 0.5": _pct(best_val(run)),
        "test A mean accuracy (majority)": f"{_pct(test['accuracy'])} ({_pct(majority)})",
        "test A mean balanced accuracy (majority: 50)": _pct(test["balanced_accuracy"]),
        "seed's metrics, ours": seed.measured(evaluation)
        + (f" (first {limit} test images)" if limit else ""),
        "seed's metrics, printed": seed.printed(config),
        "command": "`faceattr " + shlex.join(command[1:]) + "`",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, help="also write the table to this Markdown file")
    parser.add_argument("--limit", type=int, help="only the first N images of each split")
    parser.add_argument(
        "--reuse", action="store_true", help="read each RUN/eval/eval.json of an earlier call"
    )
    args = parser.parse_args()
    for run in args.runs:
        if not (run / "config.yaml").is_file():
            parser.error(f"{run} is not a run folder (no config.yaml)")
        if args.reuse and not (run / "eval" / "eval.json").is_file():
            parser.error(f"{run}/eval/eval.json is missing: run once without --reuse")
    rows = [reproduce(run, args.limit, args.reuse) for run in args.runs]
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row[k] for k in header) + " |" for row in rows]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        args.out.write_text(table)


if __name__ == "__main__":
    main()

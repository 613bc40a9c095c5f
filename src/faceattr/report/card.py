"""The model card: what was evaluated, trained how, on what data, at what cost, in which
environment, by which exact command."""

from __future__ import annotations

from dataclasses import fields

from faceattr.models.base import InputConfig
from faceattr.report.build import ReportData, ReportEntry
from faceattr.report.document import Cell, ReportTable, Section, cells
from faceattr.report.folders import Evaluation, RunRecord
from faceattr.training.config import AugmentConfig, TrainConfig

ENVIRONMENT_PACKAGES = ("faceattr", "torch", "torchvision", "lightning", "timm", "numpy")


def _recipe_rows(config: TrainConfig) -> list[tuple[str, str]]:
    augment = [
        f.name.removesuffix("_enabled")
        for f in fields(AugmentConfig)
        if f.name.endswith("_enabled") and getattr(config.augment, f.name)
    ]
    if config.augment.seed000_offline:
        augment.append("seed-000 offline x4")
    optimiser = config.optimizer
    schedule = [f"{config.trainer.epochs} epochs, monitor {config.schedule.monitor}"]
    if config.schedule.plateau:
        schedule.append(f"plateau x{config.schedule.plateau_factor}")
    if config.schedule.early_stopping:
        schedule.append(f"early stopping after {config.schedule.early_stopping_patience}")
    if optimiser.freeze_epochs:
        schedule.append(f"backbone frozen for {optimiser.freeze_epochs} epochs")
    loss = [config.loss.task_weight_preset or "equal task weights"]
    if config.loss.pos_weight:
        loss.append("positive-class weights")
    return [
        ("recipe: model", f"{config.model.name} (pretrained: {config.model.pretrained or 'no'})"),
        ("recipe: crop", f"{config.data.crop} on {config.data.image_set} images"),
        ("recipe: augmentation", ", ".join(augment) or "none"),
        (
            "recipe: optimiser",
            f"{optimiser.name}, lr {optimiser.lr:g}, weight decay {optimiser.weight_decay:g}, "
            f"batch {config.data.batch_size}",
        ),
        ("recipe: schedule", "; ".join(schedule)),
        ("recipe: loss", ", ".join(loss)),
    ]


def _environment_row(run: RunRecord) -> str:
    environment = run.environment
    packages = environment.get("packages", {})
    parts = [f"Python {environment.get('python', '?')}"]
    parts += [f"{name} {packages[name]}" for name in ENVIRONMENT_PACKAGES if packages.get(name)]
    device = environment.get("device", {})
    if device:
        parts.append(f"{device.get('type', '?')} {device.get('name', '')}".strip())
    commit = environment.get("git", {}).get("commit")
    if commit:
        dirty = " (uncommitted changes)" if environment["git"].get("dirty") else ""
        parts.append(f"git {commit[:10]}{dirty}")
    return ", ".join(parts)


def _data_rows(entry: ReportEntry) -> list[tuple[str, str]]:
    if entry.data is None:
        return []
    counts = entry.data.split_counts
    split_text = (
        ", ".join(f"{split} {count:,}" for split, count in counts.items())
        if counts is not None
        else "not readable from here"
    )
    return [("data", str(entry.data.root)), ("images per split (present)", split_text)]


def _input_text(size: tuple[int, int], config: InputConfig | None) -> str:
    """``36x36, grey, mean 0, std 1``: the size, and the preprocessing where it is known."""
    text = "x".join(str(side) for side in size)
    if config is not None:
        mean, std = (", ".join(f"{v:g}" for v in values) for values in (config.mean, config.std))
        text += f", {'grey' if config.grayscale else 'RGB'}, mean {mean}, std {std}"
    return text


def _evaluation_rows(entry: ReportEntry, evaluation: Evaluation) -> list[tuple[str, str]]:
    thresholds = evaluation.thresholds
    return [
        (
            "evaluated",
            f"{evaluation.split} split, {len(evaluation.image_ids):,} images, protocols "
            f"{', '.join(evaluation.protocols)}",
        ),
        ("attributes", f"{len(evaluation.attributes)}"),
        ("input", _input_text(evaluation.input_size, entry.input_config)),
        ("parameters", f"{evaluation.parameters:,}"),
        ("FLOPs per image", f"{evaluation.flops:,}"),
        (
            "thresholds",
            f"{evaluation.threshold_source} ({thresholds.min():.3f} to {thresholds.max():.3f})",
        ),
    ]


def card_table(entry: ReportEntry) -> ReportTable:
    """The model card of ``entry``: data, recipe, cost, thresholds, environment, command."""
    rows = [("model", entry.model_name), ("model folder", str(entry.model_dir))]
    if entry.run is not None:
        rows.append(("run folder", str(entry.run.directory)))
    rows += _data_rows(entry)
    if entry.evaluation is not None:
        rows += _evaluation_rows(entry, entry.evaluation)
    elif entry.input_config is not None:
        rows.append(("input", _input_text(entry.input_config.size, entry.input_config)))
    if entry.run is not None and entry.run.config is not None:
        rows += _recipe_rows(entry.run.config)
    if entry.run is not None and entry.run.environment:
        rows.append(("environment", _environment_row(entry.run)))
    table_rows = [cells(key, value) for key, value in rows]
    if entry.evaluation is not None:
        table_rows.append((Cell("created"), Cell(entry.evaluation.created)))
        table_rows.append((Cell("command"), Cell(entry.evaluation.command, code=True)))
    return ReportTable(f"Model card: {entry.label}", ("", ""), tuple(table_rows), numeric=False)


def model_card(data: ReportData) -> Section:
    """What was evaluated, trained how, on what, at what cost, by which exact command."""
    return Section("Model card", (card_table(data.entries[0]),))

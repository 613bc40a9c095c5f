"""``faceattr data stats ROOT --out DIR``: label statistics, charts and the seed-000 baselines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import typer

from faceattr.cli import data_app
from faceattr.cli.data import (
    ANNOTATIONS_OPTION,
    FORMAT_OPTION,
    IMAGE_SET_OPTION,
    ROOT_ARGUMENT,
    SPLIT_SEED_OPTION,
    ImageSetChoice,
    dataset_source,
)

if TYPE_CHECKING:
    from faceattr.data.stats import DatasetStats


def format_summary(stats: DatasetStats) -> str:
    """A few lines: images and splits, the rarest and commonest attributes, baseline means."""
    lines = [f"images: {stats.count:,}"]
    if stats.split_counts:
        lines.append("splits: " + ", ".join(f"{s} {n:,}" for s, n in stats.split_counts.items()))
    order = stats.frequency.argsort()
    rarest = ", ".join(f"{stats.names[k]} {stats.frequency[k]:.1%}" for k in order[:3])
    commonest = ", ".join(f"{stats.names[k]} {stats.frequency[k]:.1%}" for k in order[::-1][:3])
    lines += [f"rarest: {rarest}", f"commonest: {commonest}"]
    for split, scores in stats.baselines.items():
        lines.append(
            f"baselines on {split} ({scores.count:,} images, trained on train): "
            f"majority accuracy {scores.mean_majority_accuracy:.2%}, "
            f"minority accuracy {scores.mean_minority_accuracy:.2%}, "
            f"minority F1 {scores.mean_minority_f1:.2%} (positive = minority class)"
        )
    if not stats.baselines:
        lines.append("baselines: none (needs a partition with train and val/test images)")
    return "\n".join(lines)


@data_app.command("stats")
def stats(
    root: Path = ROOT_ARGUMENT,
    out: Path = typer.Option(..., "--out", help="Folder for the charts, tables and JSON."),
    present_only: bool = typer.Option(
        False, "--present-only", help="Only the images present on disk, not every annotated row."
    ),
    format: str | None = FORMAT_OPTION,
    image_set: ImageSetChoice = IMAGE_SET_OPTION,
    annotations: list[Path] = ANNOTATIONS_OPTION,
    split_seed: int = SPLIT_SEED_OPTION,
) -> None:
    """Frequencies, imbalance, correlations and majority/minority baselines of ROOT's binary
    attributes (over the images that label every one of them)."""
    from faceattr.data.formats import AnnotationError
    from faceattr.data.record import DatasetError
    from faceattr.data.stats import dataset_stats, write_stats

    try:
        data = dataset_source(root, format, image_set, annotations, split_seed).load()
    except (AnnotationError, DatasetError, FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    binary = [a.name for a in data.schema.attributes if a.kind == "binary"]
    labels = data.labels[:, data.schema.columns(binary)]
    selected = data.present if present_only else np.ones(len(data), dtype=bool)
    complete = selected & ~np.isnan(labels).any(axis=1)
    if (selected & ~complete).any():
        typer.echo(f"left out {int((selected & ~complete).sum()):,} images missing a label")
    labels = labels[complete]
    if len(labels) == 0 or not binary:
        where = f"present in {data.image_dir}" if present_only else f"annotated in {root}"
        typer.echo(f"error: no images {where}", err=True)
        raise typer.Exit(1)
    partition = None if data.partition is None else data.partition[complete]
    result = dataset_stats(labels.astype(np.uint8), partition, tuple(binary))
    which = "present images" if present_only else "all annotated rows"
    typer.echo(f"{data.format} at {root} ({which})")
    typer.echo(format_summary(result))
    for kind, path in write_stats(result, out).items():
        typer.echo(f"{kind:<16} {path}")

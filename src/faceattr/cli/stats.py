"""``faceattr data stats ROOT --out DIR``: label statistics, charts and the seed-000 baselines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from faceattr.cli import data_app

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
    root: Path = typer.Argument(..., help="The CelebA folder (official or Kaggle layout)."),
    out: Path = typer.Option(..., "--out", help="Folder for the charts, tables and JSON."),
    present_only: bool = typer.Option(
        False, "--present-only", help="Only the images present on disk, not every annotated row."
    ),
) -> None:
    """Attribute frequencies, imbalance, correlations and majority/minority baselines of ROOT."""
    from faceattr.data.record import DatasetError
    from faceattr.data.loaders import load_dataset
    from faceattr.data.formats import AnnotationError
    from faceattr.data.stats import dataset_stats, write_stats

    try:
        data = load_dataset(root)
    except (AnnotationError, DatasetError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    rows = data.present if present_only else slice(None)
    labels = data.labels[rows]
    if len(labels) == 0:
        where = f"present in {data.image_dir}" if present_only else f"annotated in {root}"
        typer.echo(f"error: no images {where}", err=True)
        raise typer.Exit(1)
    partition = None if data.partition is None else data.partition[rows]
    result = dataset_stats(labels, partition, data.attribute_names)
    typer.echo(f"CelebA at {root} ({'present images' if present_only else 'all annotated rows'})")
    typer.echo(format_summary(result))
    for kind, path in write_stats(result, out).items():
        typer.echo(f"{kind:<16} {path}")

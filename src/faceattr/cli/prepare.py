"""`faceattr data prepare` (the packed image cache) and `faceattr data protocols` (A/C/D/T)."""

from __future__ import annotations

import os
from pathlib import Path

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
from faceattr.defaults import DEFAULT_MARGIN, DEFAULT_SIZE, PROTOCOLS

DEFAULT_WORKERS = min(os.cpu_count() or 1, 8)
WORKERS_HELP = "decoding processes (0: decode in this process)"


def _split_list(values: list[str]) -> list[str]:
    """``--split train --split val`` and ``--split train,val`` alike."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@data_app.command("prepare")
def prepare(
    root: Path = ROOT_ARGUMENT,
    out: Path = typer.Option(..., "--out", help="cache folder (created, or finished if partial)"),
    size: int = typer.Option(DEFAULT_SIZE, "--size", help="side of the square crops, pixels"),
    margin: float = typer.Option(DEFAULT_MARGIN, "--margin", help="enlargement of the AFFACT box"),
    workers: int = typer.Option(DEFAULT_WORKERS, "--workers", help=WORKERS_HELP),
    split: list[str] = typer.Option([], "--split", help="train, val, test (repeatable; all)"),
    format: str | None = FORMAT_OPTION,
    image_set: ImageSetChoice = IMAGE_SET_OPTION,
    annotations: list[Path] = ANNOTATIONS_OPTION,
    split_seed: int = SPLIT_SEED_OPTION,
) -> None:
    """Decode every present image once into a memory-mapped array of loose face crops."""
    from faceattr.data.cache_prepare import prepare_cache

    try:
        summary = prepare_cache(
            dataset_source(root, format, image_set, annotations, split_seed),
            out,
            size=size,
            margin=margin,
            splits=_split_list(split),
            workers=workers,
        )
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"cache: {summary.out} ({summary.count} images, {size}x{size}, margin {margin})")
    typer.echo(
        f"written now: {summary.written}, done before: {summary.already_done}, "
        f"{summary.images_per_second:.0f} images/s over {summary.seconds:.1f} s"
    )
    typer.echo("crops from: " + ", ".join(f"{k} {v}" for k, v in summary.crop_sources.items()))
    typer.echo(f"skipped (unreadable): {len(summary.skipped)}, listed in skipped.tsv")
    for image_id, reason in summary.skipped[:10]:
        typer.echo(f"  {image_id}: {reason}")


@data_app.command("protocols")
def protocols(
    root: Path = ROOT_ARGUMENT,
    out: Path = typer.Option(..., "--out", help="output folder (overwritten)"),
    names: str = typer.Option(",".join(PROTOCOLS), "--protocols", help="comma-separated subset"),
    split: str = typer.Option("test", "--split", help="train, val or test"),
    size: int = typer.Option(224, "--size", help="side of each view, pixels"),
    seed: int = typer.Option(0, "--seed", help="seed of test set T's transforms"),
    limit: int | None = typer.Option(None, "--limit", help="only the first N images of the split"),
    workers: int = typer.Option(DEFAULT_WORKERS, "--workers", help=WORKERS_HELP),
    format: str | None = FORMAT_OPTION,
    image_set: ImageSetChoice = IMAGE_SET_OPTION,
    annotations: list[Path] = ANNOTATIONS_OPTION,
    split_seed: int = SPLIT_SEED_OPTION,
    crop: str = typer.Option(
        "affact", "--crop", help="the crop rule of the models to score (data.crop of training)"
    ),
    box_scale: float = typer.Option(2.0, "--box-scale", help="data.box_scale of the box crop"),
) -> None:
    """Materialise seed 003's test sets A, C, D, T losslessly, with a sha256 manifest, cut by
    the crop rule of the models they will score."""
    from faceattr.evaluation.protocols import materialise_protocols
    from faceattr.training.batch import CropSpec
    from faceattr.training.crops import CROP_KINDS

    if crop not in CROP_KINDS:
        typer.echo(f"error: --crop {crop!r}: choose from {', '.join(CROP_KINDS)}", err=True)
        raise typer.Exit(2)

    try:
        manifest = materialise_protocols(
            dataset_source(root, format, image_set, annotations, split_seed),
            out,
            protocols=_split_list([names]),
            split=split,
            size=size,
            seed=seed,
            limit=limit,
            workers=workers,
            crop=CropSpec(crop, (size, size), box_scale),
        )
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"{len(manifest.image_ids)} {split} images in {manifest.seconds:.1f} s -> {out}")
    for name, counts in manifest.crop_counts.items():
        own = "the model's crop of the landmarks" if name == "A" else "the detector box"
        typer.echo(
            f"  {name}: {counts.own} from {own}, {counts.fallback} from a fallback, "
            f"{counts.whole_image} whole images"
        )
    typer.echo(f"skipped (unreadable): {len(manifest.skipped)}")
    for image_id, reason in manifest.skipped[:10]:
        typer.echo(f"  {image_id}: {reason}")

"""``faceattr data landmarks ROOT``: detect faces and write landmark and box files for a folder."""

from __future__ import annotations

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
from faceattr.faces.detection import list_detectors


@data_app.command("landmarks")
def landmarks(
    root: Path = ROOT_ARGUMENT,
    format: str | None = FORMAT_OPTION,
    image_set: ImageSetChoice = IMAGE_SET_OPTION,
    annotations: list[Path] = ANNOTATIONS_OPTION,
    split_seed: int = SPLIT_SEED_OPTION,
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Where to write; default ROOT when writable, else the annotation cache for ROOT.",
    ),
    detector: str = typer.Option(
        "yunet", "--detector", help=f"A registered face detector: {', '.join(list_detectors())}."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Only the first N present images."
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Detector processes (1 is fastest on a busy 2-core machine)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Detect the main face of every present image of ROOT; write its 5 landmarks and box.

    Writes the files the dataset's loader reads (CelebA: list_landmarks_align_celeba.txt +
    list_bbox_align_celeba.txt, or for --image-set wild list_landmarks_celeba.txt +
    list_bbox_celeba.txt; other formats: landmarks.txt + boxes.txt) and a JSON summary. Images
    without a face get a fallback (the dataset's box, or the canonical aligned landmarks), counted
    in the summary. An interrupted run resumes where it stopped.
    """
    from faceattr.data.landmarks import detect_landmarks

    try:
        summary = detect_landmarks(
            dataset_source(root, format, image_set, annotations, split_seed),
            out,
            detector,
            limit,
            workers,
            overwrite=overwrite,
        )
    except (FileExistsError, FileNotFoundError, ValueError) as error:  # ValueError: bad name/file
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from error
    typer.echo(summary.format())

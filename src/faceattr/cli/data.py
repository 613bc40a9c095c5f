"""``faceattr data check ROOT``: validate a dataset folder and print what it holds; the dataset
options every data command shares."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from faceattr.cli import data_app

if TYPE_CHECKING:
    from faceattr.data.loaders import DatasetSource

FORMATS_HELP = "celeba, celebahq, lfwa, utkface, folder (`faceattr.data.loaders`)"


class ImageSetChoice(str, Enum):
    """CelebA's two image sets."""

    align = "align"
    wild = "wild"


ROOT_ARGUMENT = typer.Argument(
    ..., help=f"The dataset folder ({FORMATS_HELP}; its format detected from its files)."
)
FORMAT_OPTION = typer.Option(
    None, "--format", help=f"The dataset format: {FORMATS_HELP} (default: detected)."
)
IMAGE_SET_OPTION = typer.Option(
    ImageSetChoice.align, "--image-set", help="CelebA: aligned (img_align_celeba) or in-the-wild."
)
ANNOTATIONS_OPTION = typer.Option(
    [], "--annotations", help="More folders to look for annotation files in (repeatable)."
)
SPLIT_SEED_OPTION = typer.Option(
    0, "--split-seed", help="Seed of the partition drawn for a dataset that ships none."
)


def dataset_source(
    root: Path,
    format: str | None,
    image_set: ImageSetChoice,
    annotations: list[Path],
    split_seed: int,
) -> DatasetSource:
    """The dataset the shared options name; an unknown format exits with a one-line error."""
    from faceattr.data.loaders import DatasetSource, list_formats

    if format is not None and format not in list_formats():
        typer.echo(f"error: --format {format!r}: choose from {', '.join(list_formats())}", err=True)
        raise typer.Exit(2)
    return DatasetSource(root, format, image_set.value, tuple(annotations), split_seed)


@data_app.command("check")
def check(
    root: Path = ROOT_ARGUMENT,
    format: str | None = FORMAT_OPTION,
    image_set: ImageSetChoice = IMAGE_SET_OPTION,
    annotations: list[Path] = ANNOTATIONS_OPTION,
    split_seed: int = SPLIT_SEED_OPTION,
    verify: bool = typer.Option(
        False, "--verify-images", help="Also decode every present image (slow)."
    ),
) -> None:
    """Validate ROOT's annotation files and images; exit 1 only on real errors.

    A partial image folder (an interrupted download) is a warning, not an error; files a loader
    cannot read (a malformed UTKFace name) are listed as skipped.
    """
    report = dataset_source(root, format, image_set, annotations, split_seed).check(verify)
    typer.echo(report.format_text())
    if not report.ok:
        raise typer.Exit(1)

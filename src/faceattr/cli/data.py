"""``faceattr data check ROOT``: validate a CelebA folder and print what it holds."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from faceattr.cli import data_app


class ImageSetChoice(str, Enum):
    """The image sets a CelebA folder can hold."""

    align = "align"
    wild = "wild"


@data_app.command("check")
def check(
    root: Path = typer.Argument(..., help="The CelebA folder (official or Kaggle layout)."),
    image_set: ImageSetChoice = typer.Option(
        ImageSetChoice.align, "--image-set", help="Aligned (img_align_celeba) or in-the-wild."
    ),
    annotations: list[Path] = typer.Option(
        [], "--annotations", help="More folders to look for annotation files in (repeatable)."
    ),
    verify: bool = typer.Option(
        False, "--verify-images", help="Also decode every present image (slow)."
    ),
) -> None:
    """Validate ROOT's annotation files and images; exit 1 only on real errors.

    A partial image folder (an interrupted download) is a warning, not an error.
    """
    from faceattr.data.loaders import check_dataset

    report = check_dataset(root, image_set.value, annotations, verify=verify)
    typer.echo(report.format_text())
    if not report.ok:
        raise typer.Exit(1)

"""``faceattr data synth OUT``: write a synthetic CelebA-format dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from faceattr.cli import data_app


@data_app.command("synth")
def synth(
    out: Path = typer.Argument(..., help="Folder to write (new or empty)."),
    count: int = typer.Option(1000, "--count", "-n", min=1, help="Number of images."),
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed writes the same files."),
    workers: int | None = typer.Option(
        None, "--workers", min=0, help="Drawing processes (default: all CPUs; 0 or 1: in-process)."
    ),
    folder: bool = typer.Option(
        False,
        "--folder",
        help="Write a user's folder instead (photos/ + labels.csv + schema.json): the 40 binary "
        "attributes plus a numeric age and a categorical hair_colour.",
    ),
) -> None:
    """Draw COUNT faces into a complete CelebA folder: aligned and in-the-wild JPEGs, attributes,
    partition, identities, both landmark files and face boxes (``--folder``: a folder-format
    dataset of the aligned faces, with ``age`` and ``hair_colour``)."""
    import tempfile

    from faceattr.data.synth import MINORITY_FLIP_RATE, RENDERED_ATTRIBUTES, generate_dataset
    from faceattr.data.synth.folder import export_folder

    if not folder:
        summary = generate_dataset(out, count, seed=seed, workers=workers)
    else:
        if out.exists() and any(out.iterdir()):
            raise typer.BadParameter(f"{out} is not empty: write to a new folder", param_hint="OUT")
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".synth-") as celeba:
            summary = generate_dataset(celeba, count, seed=seed, workers=workers)
            export_folder(celeba, out, seed=seed, move=True)
    train, val, test = summary.split_counts
    if folder:
        typer.echo(f"wrote {summary.images:,} aligned images, labels.csv and schema.json to {out}")
    else:
        typer.echo(f"wrote {summary.images:,} aligned + wild images to {summary.root}")
    typer.echo(
        f"identities: {summary.identities:,}; split train {train:,} / val {val:,} / test {test:,}"
    )
    typer.echo(
        f"{len(RENDERED_ATTRIBUTES)} attributes drawn; label noise {summary.label_noise:.2%} "
        f"(minority labels flipped with p={MINORITY_FLIP_RATE})"
    )
    typer.echo(
        f"{summary.seconds:.1f} s with {summary.workers} worker(s), "
        f"{summary.images_per_second:.0f} images/s"
    )

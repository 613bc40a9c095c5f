"""`faceattr cv CONFIG --folds 5 [--out DIR] [--jobs N] [key=value ...]`: k-fold cross-validation
of a recipe on identity-disjoint folds, every metric as mean +- std (seed 000)."""

from __future__ import annotations

from pathlib import Path

import typer

from faceattr.cli import app
from faceattr.cli.train import ARGS_HELP, split_arguments

OUT_HELP = "output folder; a rerun with the same one keeps the finished folds (default: "
OUT_HELP += "<trainer.output_dir>/cv-<trainer.name>)"
JOBS_HELP = "folds trained at once, each in its own process (the CPU cores are shared)"


@app.command("cv")
def cv_command(
    arguments: list[str] = typer.Argument(None, metavar="[CONFIG] [KEY=VALUE]...", help=ARGS_HELP),
    folds: int = typer.Option(5, "--folds", min=2, help="identity-disjoint folds"),
    out: Path | None = typer.Option(None, "--out", help=OUT_HELP),
    jobs: int = typer.Option(1, "--jobs", min=1, help=JOBS_HELP),
) -> None:
    """Cross-validate a recipe: one run per fold, then cv.json and cv.csv (mean +- std)."""
    from faceattr.training.config import ConfigError, load_config
    from faceattr.training.cv import cross_validate  # Lightning: only for training

    try:
        recipe, overrides = split_arguments(arguments or [])
        config = load_config(recipe, overrides)
        folder = out or Path(config.trainer.output_dir) / f"cv-{config.trainer.name}"
        result = cross_validate(config, folds, folder, jobs)
    except (ConfigError, FileNotFoundError, KeyError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(result.table().to_string(float_format="%.4f"))
    for name in ("val/mean_accuracy", "val/loss"):
        if name in result.summary:
            summary = result.summary[name]
            typer.echo(f"{name}: {summary.mean:.4f} +- {summary.std:.4f} over {folds} folds")
    typer.echo(f"wrote {folder / 'cv.json'} and {folder / 'cv.csv'}")

"""``faceattr report EVAL_OR_RUN... --out DIR``: ``report.html`` (self-contained) and
``report.md`` for one evaluation or run folder, or a comparison of several."""

from __future__ import annotations

from pathlib import Path

import typer

from faceattr.cli import app

PATHS_HELP = (
    "evaluation folders (eval.json, from faceattr evaluate) or run folders; several: a comparison"
)


@app.command("report")
def report(
    paths: list[Path] = typer.Argument(..., metavar="EVAL_OR_RUN...", help=PATHS_HELP),
    out: Path = typer.Option(..., "--out", help="Folder for report.html, report.md and PNGs."),
    title: str | None = typer.Option(None, "--title", help="Title (default: from the model)."),
    samples: int = typer.Option(8, "--samples", min=1, help="Sample images in the grid."),
    attributes: str | None = typer.Option(
        None, "--attributes", help="Comma-separated attributes marked under the sample images."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample images' random choice."),
) -> None:
    """Write a one-file HTML report and a Markdown report of evaluations or runs."""
    from faceattr.report.build import ReportOptions
    from faceattr.report.writer import write_report

    names = tuple(a.strip() for a in attributes.split(",") if a.strip()) if attributes else None
    options = ReportOptions(samples=samples, grid_attributes=names, seed=seed)
    try:
        files = write_report(paths, out, options, title=title)
    except (FileNotFoundError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"html      {files.html}")
    typer.echo(f"markdown  {files.markdown} (+ {len(files.figures)} PNG files)")

"""``faceattr explain [--model RUN] IMAGE [--attribute NAME ...] --out DIR``: feature maps and
per-attribute saliency for every face of a photo, as PNG files and one HTML page."""

from __future__ import annotations

from pathlib import Path

import typer

from faceattr.cli import MODEL_HELP, app
from faceattr.inference.values import AttributeValue, BinaryValue

ATTRIBUTE_HELP = "also explain this attribute (repeatable); always: the top present attributes"


def said(value: AttributeValue) -> str:
    """A binary attribute's probability (``0.83``), or another's value (``31.4 years``)."""
    return f"{value.probability:.2f}" if isinstance(value, BinaryValue) else str(value)


@app.command("explain")
def explain_command(
    image: Path = typer.Argument(..., help="A photo; its faces are detected and aligned."),
    model: Path | None = typer.Option(None, "--model", help=MODEL_HELP),
    attribute: list[str] = typer.Option([], "--attribute", "-a", help=ATTRIBUTE_HELP),
    out: Path = typer.Option(..., "--out", help="Folder for the PNG files and explain.html."),
    top: int = typer.Option(3, "--top", min=0, help="How many present attributes to explain."),
    max_channels: int = typer.Option(64, "--max-channels", min=1, help="Maps per stage grid."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, ..."),
) -> None:
    """Show what the model sees in each face: the feature maps after every convolutional stage
    and a saliency heatmap per attribute, in DIR/explain.html."""
    from faceattr.explain import explain_image
    from faceattr.inference.predictor import Predictor

    try:
        predictor = Predictor.from_checkpoint(model, device=device)
        explanation = explain_image(
            predictor, image, attribute, out, top=top, max_channels=max_channels
        )
    except (FileNotFoundError, KeyError, TypeError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) else error
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2) from error
    typer.echo(f"page: {explanation.page}")
    for face in explanation.faces:
        shown = ", ".join(f"{s.name} {said(s.value)}" for s in face.saliency)
        typer.echo(f"  face {face.number}: {len(face.stages)} stage grids; saliency of {shown}")
    if not explanation.faces:
        typer.echo(f"no face found in {image}", err=True)
        raise typer.Exit(1)

"""``faceattr export RUN --onnx out.onnx``: a trained model as an ONNX file for onnxruntime."""

from __future__ import annotations

from pathlib import Path

import typer

from faceattr.cli import app
from faceattr.defaults import DEFAULT_OPSET


@app.command("export")
def export(
    run: Path = typer.Argument(..., help="A run folder (its best/), an export folder or a .ckpt."),
    onnx: Path = typer.Option(..., "--onnx", help="The ONNX file to write (its .json beside)."),
    opset: int = typer.Option(DEFAULT_OPSET, "--opset", min=7, help="ONNX opset version."),
) -> None:
    """Export RUN's model to ONNX (normalised images -> probabilities and embedding, and the
    numeric and categorical attributes' values where it has them; any batch size) with its
    description beside it; `faceattr predict --model out.onnx` then runs it on
    onnxruntime. Checks onnxruntime against PyTorch on a test batch."""
    from faceattr.inference.onnx import export_onnx
    from faceattr.shipped import model_path

    try:
        result = export_onnx(model_path(run), onnx, opset)
    except (FileNotFoundError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {result.onnx_path} (opset {result.opset})")
    typer.echo(f"wrote {result.description_path}")
    typer.echo(f"onnxruntime vs PyTorch: max difference {result.max_difference:.2e}")

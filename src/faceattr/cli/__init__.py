"""The ``faceattr`` command line: one Typer app, one module per command group."""

import typer

from faceattr.shipped import SHIPPED_MODEL

app = typer.Typer(
    name="faceattr",
    help="Train, evaluate and serve facial-attribute classifiers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Read, check, generate and prepare CelebA-format datasets.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
MODEL_HELP = (
    "A run folder (its best/), an export folder, a .ckpt or an .onnx; default: the model"
    f" shipped in the package (faceattr/weights/{SHIPPED_MODEL}/MODEL_CARD.md)."
)
ABSTAIN_HELP = (
    "Report an attribute as unsure when its probability lies within this band of its threshold"
    " (0: off; evaluate's risk-coverage curve helps to pick it)."
)

# Command modules register themselves on the apps above.
from faceattr.cli import (  # noqa: E402,F401
    cv,
    data,
    demo,
    evaluate,
    explain,
    export,
    index,
    landmarks,
    predict,
    prepare,
    report,
    serve,
    stats,
    sweep,
    synth,
    train,
)


def main() -> None:
    """Entry point of the ``faceattr`` console script."""
    app()

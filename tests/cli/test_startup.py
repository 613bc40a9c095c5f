"""Start-up of the ``faceattr`` command: importing it and rendering its help load none of the heavy
libraries (each command imports them when it runs), and every command is still registered."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from faceattr.cli import app

HEAVY = ("torch", "torchvision", "timm", "lightning", "uvicorn", "fastapi", "matplotlib", "cv2")
COMMANDS = {
    "compare",
    "cv",
    "data",
    "demo",
    "evaluate",
    "explain",
    "export",
    "index",
    "predict",
    "report",
    "search",
    "serve",
    "sweep",
    "train",
}
DATA_COMMANDS = {"check", "landmarks", "prepare", "protocols", "stats", "synth"}


def heavy_after(code: str) -> list[str]:
    """The libraries of ``HEAVY`` that a fresh interpreter has imported after running ``code``."""
    report = f"import sys\nprint(*(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)"
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{report}"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()[-1].split()


def run_cli(*arguments: str) -> str:
    """Code that runs ``faceattr ARGUMENTS`` to its end (Typer exits through ``SystemExit``)."""
    return (
        "import contextlib\nfrom faceattr.cli import app\n"
        f"with contextlib.suppress(SystemExit):\n    app({list(arguments)!r})"
    )


@pytest.mark.parametrize(
    "code",
    ["import faceattr.cli", run_cli("--help"), run_cli("predict", "--help")],
    ids=["import", "help", "predict-help"],
)
def test_start_up_imports_no_heavy_library(code: str) -> None:
    assert heavy_after(code) == []


def test_the_probe_sees_a_heavy_import() -> None:
    assert heavy_after("import cv2") == ["cv2"]


@pytest.mark.parametrize(
    ("arguments", "commands"), [(["--help"], COMMANDS), (["data", "--help"], DATA_COMMANDS)]
)
def test_help_lists_every_command(arguments: list[str], commands: set[str]) -> None:
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert set(re.findall(r"^│ (\w+) ", result.output, re.MULTILINE)) == commands

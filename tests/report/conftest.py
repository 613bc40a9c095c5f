"""Fixtures of the report tests: two evaluations of the shared ``synth_run`` by ``faceattr
evaluate``'s own functions, and their reports (rendered once per session: the HTML checks and the
browser check read the same files)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import faceattr.cli.report  # noqa: F401  (registers `faceattr report`)
from faceattr.cli import app
from faceattr.evaluation.evaluate import ScoringOptions, evaluate_model, write_eval
from faceattr.report import ReportFiles, write_report


@pytest.fixture(scope="session")
def evaluations(synth_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two evaluation folders of a copy of ``synth_run``: protocols A, C, D, T with thresholds
    tuned for F1 on the validation faces (``RUN/eval``), and A, D at 0.5 (``RUN/eval-half``)."""
    base = tmp_path_factory.mktemp("report-run")
    run = Path(shutil.copytree(synth_run, base / synth_run.name))
    options = ScoringOptions(device="cpu", progress=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEATTR_CACHE", str(base / "cache"))
        write_eval(evaluate_model(run, save_tuned=False, options=options), run / "eval")
        half = evaluate_model(run, protocols="A,D", tune="none", options=options)
        write_eval(half, run / "eval-half")
    return run / "eval", run / "eval-half"


@pytest.fixture(scope="session")
def single_report(
    evaluations: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> ReportFiles:
    """The report of the tuned evaluation."""
    out = tmp_path_factory.mktemp("single-report")
    return write_report([evaluations[0]], out, progress=False)


@pytest.fixture(scope="session")
def comparison_report(
    evaluations: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> ReportFiles:
    """Both evaluations side by side, written by ``faceattr report EVAL EVAL --out DIR``."""
    out = tmp_path_factory.mktemp("comparison-report")
    result = CliRunner().invoke(app, ["report", *map(str, evaluations), "--out", str(out)])
    assert result.exit_code == 0, result.output
    figures = tuple(sorted(out.glob("*.png")))
    return ReportFiles(out / "report.html", out / "report.md", figures)

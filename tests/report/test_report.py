"""Reports of real tiny runs evaluated by ``faceattr evaluate``: every figure embedded in
report.html and written beside report.md, a comparison of two runs, a run without evaluation,
an extra section, and clear errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import faceattr.cli.report  # noqa: F401  (registers `faceattr report`)
from faceattr.cli import app
from faceattr.report import (
    ReportData,
    ReportFiles,
    Section,
    compose_report,
    gather,
    load_evaluation,
    write_report,
)
from faceattr.report.document import Cell, ReportTable
from faceattr.report.figures import sample_grid
from faceattr.report.markdown import render_markdown
from faceattr.report.sections import model_card

DATA_URI = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')
MD_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")
TEST_IMAGES = 8
SINGLE_FIGURES = {
    "training_curves",
    "baseline_errors",
    "protocol_errors",
    "correlation",
    "slices",
    "samples",
    "reliability_A",
    "reliability_worst_A",
}


def check_files(files: ReportFiles, figures: set[str]) -> str:
    """Assert both reports show exactly ``figures`` (embedded / beside); returns the HTML."""
    html = files.html.read_text()
    embedded = DATA_URI.findall(html)
    assert len(embedded) == html.count("<img") == len(figures)
    assert not re.search(r"(src|href)=\"(https?:|//)", html) and "<script" not in html
    linked = MD_IMAGE.findall(files.markdown.read_text())
    assert {Path(name).stem for name in linked} == figures == {p.stem for p in files.figures}
    for name in linked:
        with Image.open(files.markdown.parent / name) as image:
            assert image.format == "PNG" and image.width > 100
    return html


def test_report_of_an_evaluation_embeds_every_figure_and_the_numbers(
    single_report: ReportFiles, evaluations: tuple[Path, Path]
) -> None:
    html = check_files(single_report, SINGLE_FIGURES)
    document = json.loads((evaluations[0] / "eval.json").read_text())
    for title in (
        "Model card",
        "Training",
        "Protocols",
        "Classification report",
        "Calibration",
        "Sample images",
    ):
        assert f"<h2>{title}</h2>" in html
    calibrated = document["protocols"]["A"]["calibration"]["calibrated"]["mean"]
    assert f"<td>{calibrated['ece']:.4f}</td>" in html
    for protocol, scores in document["protocols"].items():
        assert f"<td>{protocol}</td>" in html
        assert f"<td>{100 * scores['mean']['error']:.2f}</td>" in html
    assert f"{document['cost']['parameters']:,}" in html and document["command"] in html
    marks = html.count('class="good"') + html.count('class="bad"')
    assert marks == len(document["attributes"]) * TEST_IMAGES  # every label of every image
    assert "| mean |" in single_report.markdown.read_text()
    minority_f1 = np.mean(document["baselines"]["minority"]["f1"])
    assert f"{minority_f1:.3f} mean F1" in html


def test_comparison_of_two_evaluations(
    comparison_report: ReportFiles, evaluations: tuple[Path, Path]
) -> None:
    html = check_files(comparison_report, {"attribute_errors", "training_curves"})
    for evaluation in evaluations:
        label = f"facenet-mtl ({evaluation.name})"
        assert html.count(label) >= 3  # both tables and the card's caption
    assert "Comparison of 2 models" in html and html.count("Model card:") == 2
    assert "<th>A facenet-mtl" in html and "<th>C facenet-mtl" not in html  # shared protocols
    assert html.count("<td>—</td>") == 2  # the 0.5 evaluation has neither C nor T


def test_a_run_without_evaluation_reports_its_card_and_training(
    evaluations: tuple[Path, Path], tmp_path: Path
) -> None:
    ignore = shutil.ignore_patterns("eval*")
    run = shutil.copytree(evaluations[0].parent, tmp_path / "run", ignore=ignore)
    files = write_report([run], tmp_path / "out", progress=False)
    html = check_files(files, {"training_curves"})
    assert "training report" in html and "recipe: optimiser" in html


def test_a_section_renderer_extends_the_report(evaluations: tuple[Path, Path]) -> None:
    def slices(data: ReportData) -> Section:
        table = ReportTable("by group", ("group", "accuracy"), ((Cell("Male"), Cell("0.9|1")),))
        return Section("Slices", ("per group", table))

    report = compose_report(gather([evaluations[1]]), sections=(model_card, slices), progress=False)
    assert [s.title for s in report.sections] == ["Model card", "Slices"]
    assert "| Male | 0.9\\|1 |" in render_markdown(report)


def test_bad_inputs_are_named(evaluations: tuple[Path, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "neither an evaluation folder" in result.output
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "eval.json").write_text(json.dumps({"format": "other"}))
    result = runner.invoke(app, ["report", str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "not a faceattr-eval version 1" in result.output
    (bad / "eval.json").write_text('{"format": "faceattr-eval",\n "version": ')
    result = runner.invoke(app, ["report", str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and f"{bad / 'eval.json'}:2: not JSON" in result.output
    document = json.loads((evaluations[0] / "eval.json").read_text())
    del document["cost"]["flops"]
    (bad / "eval.json").write_text(json.dumps(document))
    shutil.copy(evaluations[0] / "predictions.npz", bad)
    with pytest.raises(ValueError, match=r"bad/eval.json: missing key 'flops'"):
        load_evaluation(bad)
    result = runner.invoke(app, ["report", str(evaluations[0].parent), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "holds several evaluations" in result.output
    arguments = ["report", str(evaluations[0]), "--out", str(tmp_path), "--attributes", "Young"]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2 and "['Young'] were not evaluated" in result.output
    with pytest.raises(ValueError, match="2 images, predicted"):
        one = np.zeros((1, 1), np.uint8)
        sample_grid(np.zeros((2, 8, 8, 3), np.uint8), ["a", "b"], ["Male"], one, one)

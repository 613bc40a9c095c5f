"""`faceattr demo` runs end to end on the embedded synthetic dataset."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.training.checkpoint import load_checkpoint


def test_demo_writes_data_stats_cache_and_two_trained_models(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--count", "150"])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "Demo finished" in result.output
    assert (out / "data" / "list_attr_celeba.txt").is_file()
    assert (out / "stats" / "frequencies.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "stats" / "stats.json").read_text())["count"] == 150
    runs = sorted((out / "runs").iterdir())
    assert [r.name.split("-", 2)[-1] for r in runs] == ["demo-facenet", "demo-mobilenet"]
    for run in runs:
        model = load_checkpoint(run / "best")
        assert len(model.attributes) in (6, 40)
        assert (run / "metrics.csv").is_file() and (run / "config.yaml").is_file()
    evaluation = json.loads((runs[-1] / "eval" / "eval.json").read_text())
    assert sorted(evaluation["protocols"]) == ["A", "D"]
    assert (out / "report" / "report.html").stat().st_size > 10_000
    assert (out / "explain" / "explain.html").is_file()
    assert "files indexed" in result.output and (out / "faces.db").is_file()
    assert 'search "Eyeglasses and Wearing_Hat"' in result.output
    assert "face(s)" in result.output and (out / "astronaut.png").is_file()

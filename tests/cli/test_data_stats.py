"""``faceattr data stats``: charts, tables and JSON from a generated CelebA folder."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from faceattr.cli import app

runner = CliRunner()


def test_stats_writes_charts_tables_and_json(fake_celeba: Path, tmp_path: Path) -> None:
    out = tmp_path / "stats"
    result = runner.invoke(app, ["data", "stats", str(fake_celeba), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "images: 12" in result.output and "splits: train 6, val 3, test 3" in result.output
    assert "baselines on test (3 images, trained on train)" in result.output
    for name in ("frequencies.png", "correlation.png", "correlation.csv", "baselines.csv"):
        assert str(out / name) in result.output
    for name in ("frequencies.png", "correlation.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and min(image.size) >= 700
            image.verify()
    document = json.loads((out / "stats.json").read_text())
    assert document["count"] == 12 and set(document["baselines"]) == {"val", "test"}
    assert len(document["frequency"]) == 40


def test_present_only_uses_the_images_on_disk(fake_celeba: Path, tmp_path: Path) -> None:
    for image_id in ("000001.jpg", "000012.jpg"):  # one train, one test image
        (fake_celeba / "img_align_celeba" / image_id).unlink()
    out = tmp_path / "stats"
    args = ["data", "stats", str(fake_celeba), "--out", str(out), "--present-only"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    document = json.loads((out / "stats.json").read_text())
    assert document["count"] == 10
    assert document["split_counts"] == {"train": 5, "val": 3, "test": 2}


def test_folder_without_annotations_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "stats", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "no known dataset layout found; pass --format" in result.output
    assert not (tmp_path / "o").exists()

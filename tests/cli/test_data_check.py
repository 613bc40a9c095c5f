"""``faceattr data check``: the real sample passes; a broken folder fails naming the line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from faceattr.cli import app

runner = CliRunner()


def test_check_real_sample_passes_with_missing_images(
    celeba_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path))  # the sample's own files only
    result = runner.invoke(app, ["data", "check", str(celeba_root)])
    assert result.exit_code == 0, result.output
    assert "rows: 202,599 annotated images, 40 attributes" in result.output
    assert "train 162,770 (16,000 present), val 19,867 (2,000 present)" in result.output
    assert "identities: 10,177; identity-disjoint partition: yes" in result.output
    assert "20,000 present" in result.output and "182,599 missing" in result.output
    assert "landmarks   not found (list_landmarks_align_celeba.txt or .csv)" in result.output
    assert result.output.rstrip().endswith("OK")


def test_check_fake_folder_both_image_sets(fake_celeba: Path) -> None:
    for image_set in ("align", "wild"):
        result = runner.invoke(app, ["data", "check", str(fake_celeba), "--image-set", image_set])
        assert result.exit_code == 0, result.output
        assert "12 present" in result.output and "warning" not in result.output


def test_check_broken_folder_exits_nonzero_naming_file_and_line(fake_celeba: Path) -> None:
    path = fake_celeba / "list_eval_partition.txt"
    lines = path.read_text().splitlines()
    lines[6] = lines[6].replace(" 1", " 7")  # line 7: split 7 does not exist
    path.write_text("\n".join(lines))
    result = runner.invoke(app, ["data", "check", str(fake_celeba)])
    assert result.exit_code == 1
    assert "list_eval_partition.txt:7: bad value '7' for partition" in result.output
    assert "FAILED: 1 error(s)" in result.output


def test_check_finds_annotations_in_extra_dirs(fake_celeba: Path, tmp_path: Path) -> None:
    extra = tmp_path / "derived"
    extra.mkdir()
    name = "list_landmarks_align_celeba.txt"
    (fake_celeba / name).rename(extra / name)
    result = runner.invoke(app, ["data", "check", str(fake_celeba), "--annotations", str(extra)])
    assert result.exit_code == 0, result.output
    assert str(extra / name) in result.output

"""``faceattr data check``: the real sample passes; a broken folder fails naming the line."""

from __future__ import annotations

import logging
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


LOADING_COMMANDS = {
    "data prepare": lambda root, tmp: ["data", "prepare", str(root), "--out", str(tmp / "cache")],
    "data stats": lambda root, tmp: ["data", "stats", str(root), "--out", str(tmp / "stats")],
    "train": lambda root, tmp: [
        *("train", f"data.root={root}", "model.name=facenet-mtl", "trainer.epochs=1"),
        *("trainer.progress=false", f"trainer.output_dir={tmp / 'runs'}"),
    ],
}


def test_an_error_of_data_check_stops_every_command_that_loads_the_folder(
    fake_celeba: Path, tmp_path: Path
) -> None:
    """A partition naming an image the attribute file lacks: data check fails, and so does every
    command that loads the folder, with the same finding on one line."""
    path = fake_celeba / "list_eval_partition.txt"
    path.write_text(path.read_text().rstrip("\n") + "\n999999.jpg 0\n")
    finding = "list_eval_partition.txt names 1 images that list_attr_celeba.txt lacks (999999.jpg)"
    checked = runner.invoke(app, ["data", "check", str(fake_celeba)])
    assert checked.exit_code == 1 and f"error: {finding}" in checked.output
    for name, arguments in LOADING_COMMANDS.items():
        result = runner.invoke(app, arguments(fake_celeba, tmp_path))
        assert result.exit_code in (1, 2), (name, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and finding in lines[0], (name, result.stderr)


def test_a_warning_of_data_check_is_shown_once_by_a_loading_command(
    fake_celeba: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (fake_celeba / "img_align_celeba" / "000002.jpg").unlink()
    finding = "1 of 12 annotated images are missing from img_align_celeba/"
    checked = runner.invoke(app, ["data", "check", str(fake_celeba)])
    assert checked.exit_code == 0 and f"warning: {finding}" in checked.output
    with caplog.at_level(logging.WARNING, logger="faceattr.data.loaders"):
        for _ in range(2):
            result = runner.invoke(app, LOADING_COMMANDS["data prepare"](fake_celeba, tmp_path))
            assert result.exit_code == 0, result.output
    shown = [r.getMessage() for r in caplog.records if finding in r.getMessage()]
    assert len(shown) == 1, shown

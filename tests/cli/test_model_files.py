"""Malformed model files through every command that loads a model: each is refused with one line
naming the file and what is wrong with it (exit 1 or 2), never a traceback and never an
allocation sized by the file."""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from faceattr.cli import app
from faceattr.models import create_model
from faceattr.training.checkpoint import DESCRIPTION_FILE, WEIGHTS_FILE, export_model
from faceattr.training.config import CONFIG_FILE, load_config, save_config
from faceattr.training.trainer import LAST_CHECKPOINT

runner = CliRunner()
ATTRIBUTES = ["Male", "Smiling"]
Edit = Callable[[dict[str, Any]], Any]


def edited(**changes: Any) -> Edit:
    """An edit of model.json that replaces top-level keys."""
    return lambda data: {**data, **changes}


def with_args(**changes: Any) -> Edit:
    """An edit of model.json that replaces model arguments."""
    return lambda data: {**data, "model_args": {**data["model_args"], **changes}}


DESCRIPTIONS: dict[str, tuple[Edit, str]] = {
    "unknown model": (edited(model_name="facenet-xl"), "model_name: unknown model 'facenet-xl'"),
    "unknown argument": (with_args(depth=3), "got unknown arguments ['depth']"),
    "a list": (lambda data: [data], "not a faceattr-model description (a JSON list)"),
    "arguments as a list": (edited(model_args=[8, 16]), "model_args: Input should be a valid dict"),
    "absurd size": (
        with_args(input_size=[10**6, 10**6]),
        "input_size.0: Input should be less than or equal to 1024",
    ),
    "absurd input_config": (
        edited(input_config={"size": [10**6, 36], "channels": 1, "grayscale": True}),
        "input_config.size.0: Input should be less than or equal to 1024",
    ),
    "threshold not a number": (
        edited(thresholds=["high", 0.5]),
        "thresholds.0: Input should be a valid number (got 'high')",
    ),
    "threshold over 1": (edited(thresholds=[1.5, 0.5]), "thresholds.0: Input should be less"),
    "one threshold short": (edited(thresholds=[0.5]), "thresholds: 1 for 2 attributes"),
    "weights that do not fit": (with_args(d=4), "weights do not fit facenet-mtl (size mismatch"),
}
WEIGHTS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated weights": (lambda data: data[: len(data) // 2], "truncated or not safetensors"),
    "zero-byte weights": (lambda data: b"", "empty file (0 bytes)"),
    "a pickle as weights": (
        lambda data: pickle.dumps({"w": [1.0]}),
        "a pickle (torch.save) file, not safetensors",
    ),
}


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str, Path]]:
    """Case -> (model folder, expected message, the file it must name): copies of a tiny
    facenet-mtl export, each with one defect."""
    base = tmp_path_factory.mktemp("bad-models")
    good = export_model(create_model("facenet-mtl", ATTRIBUTES, d=8), base / "good")
    cases = {}
    for name, (edit, message) in DESCRIPTIONS.items():
        folder = Path(shutil.copytree(good, base / name.replace(" ", "-")))
        data = json.loads((folder / DESCRIPTION_FILE).read_text())
        (folder / DESCRIPTION_FILE).write_text(json.dumps(edit(data)))
        named = folder if name == "weights that do not fit" else folder / DESCRIPTION_FILE
        cases[name] = (folder, message, named)
    for name, (damage, message) in WEIGHTS.items():
        folder = Path(shutil.copytree(good, base / name.replace(" ", "-")))
        weights = folder / WEIGHTS_FILE
        weights.write_bytes(damage(weights.read_bytes()))
        cases[name] = (folder, message, weights)
    return cases


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Any photo: the commands must stop at the model, before reading it."""
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    Image.new("RGB", (64, 64), (120, 110, 100)).save(path)
    return path


COMMANDS: dict[str, Callable[[Path, Path, Path], list[str]]] = {
    "predict": lambda m, photo, tmp: ["predict", "--model", str(m), str(photo), "--workers", "0"],
    "evaluate": lambda m, photo, tmp: ["evaluate", str(m), "--no-progress"],
    "export": lambda m, photo, tmp: ["export", str(m), "--onnx", str(tmp / "m.onnx")],
    "index": lambda m, photo, tmp: [
        *("index", str(photo), "--model", str(m), "--db", str(tmp / "faces.db")),
        *("--workers", "0", "--no-progress"),
    ],
    "serve": lambda m, photo, tmp: ["serve", "--model", str(m), "--port", "0"],
    "explain": lambda m, photo, tmp: ["explain", str(photo), "--model", str(m), "--out", str(tmp)],
    "train model.init": lambda m, photo, tmp: [
        *("train", "model.name=facenet-mtl", f"model.init={m}", "model.args.d=16"),
        *(f"data.attributes=[{','.join(ATTRIBUTES)}]", f"trainer.output_dir={tmp / 'runs'}"),
        *(f"data.root={photo.parent}", "trainer.progress=false"),
    ],
}


def assert_one_line(result: Any, *parts: str) -> None:
    """Exit 1 or 2 with one stderr line holding every one of ``parts``; no traceback."""
    assert result.exit_code in (1, 2), result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for part in parts:
        assert part in lines[0], lines[0]


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", [*DESCRIPTIONS, *WEIGHTS])
def test_a_malformed_model_is_one_line_naming_the_file(
    bad_models: dict[str, tuple[Path, str, Path]],
    photo: Path,
    tmp_path: Path,
    command: str,
    case: str,
) -> None:
    folder, message, named = bad_models[case]
    if command == "train model.init" and case == "weights that do not fit":
        message = "weights do not fit facenet-mtl"  # d=4 weights for the d=16 network trained
    result = runner.invoke(app, COMMANDS[command](folder, photo, tmp_path))
    assert_one_line(result, str(named), message)


def test_an_unreadable_onnx_file_is_one_line(photo: Path, tmp_path: Path) -> None:
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x07garbage")
    (tmp_path / "model.json").write_text("{}")
    result = runner.invoke(app, ["predict", "--model", str(onnx), str(photo), "--workers", "0"])
    assert_one_line(result, str(onnx), "not a loadable ONNX model")


def resume_run(folder: Path, root: Path, checkpoint: Callable[[Path], None]) -> Path:
    """A run folder whose config trains facenet-mtl and whose last.ckpt ``checkpoint`` writes."""
    overrides = [f"data.root={root}", "model.name=facenet-mtl", "trainer.progress=false"]
    (folder / LAST_CHECKPOINT).parent.mkdir(parents=True)
    save_config(load_config(None, overrides), folder / CONFIG_FILE)
    checkpoint(folder / LAST_CHECKPOINT)
    return folder


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (
            lambda path: torch.save({"hyper_parameters": argparse.Namespace(lr=0.1)}, path),
            "holds a pickled Python object",
        ),
        (lambda path: path.write_bytes(pickle.dumps(argparse.Namespace())), "pickled Python"),
        (lambda path: path.write_bytes(b""), "not a whole PyTorch checkpoint"),
        (
            lambda path: (torch.save({"epoch": 1}, path), path.write_bytes(path.read_bytes()[:99])),
            "not a whole PyTorch checkpoint",
        ),
    ],
)
def test_resume_over_a_bad_last_checkpoint_is_one_line(
    fake_celeba: Path, tmp_path: Path, write: Callable[[Path], object], message: str
) -> None:
    run = resume_run(tmp_path / "run", fake_celeba, write)
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert_one_line(result, str(run / LAST_CHECKPOINT), message)

"""End-to-end runs on the synthetic faces: the run folder, reproducibility, the decode path,
fine-tuning a trained model, kill-and-resume, DDP with two CPU processes."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from faceattr.training import load_checkpoint, load_config, train
from faceattr.training.checkpoint import safe_torch_load
from faceattr.training.datamodule import FaceDataModule
from faceattr.training.losses import pos_weight_from_labels
from faceattr.training.trainer import build_model

RUN_FILES = (
    "config.yaml",
    "environment.json",
    "metrics.csv",
    "checkpoints/last.ckpt",
    "best/model.safetensors",
    "best/model.json",
    "last/model.safetensors",
    "last/model.json",
)


def epochs_done(checkpoint: Path) -> int:
    """Epochs trained and validated when Lightning wrote ``checkpoint``."""
    progress = safe_torch_load(checkpoint)["loops"]["fit_loop"]["epoch_progress"]
    return int(progress["current"]["processed"])


def read_history(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def validation_columns(rows: list[dict[str, str]]) -> list[list[float]]:
    return [[float(v) for k, v in row.items() if k.startswith("val/")] for row in rows]


def test_seeded_runs_write_a_full_run_folder_and_agree(tiny_config) -> None:
    first = train(tiny_config("trainer.name=first"))
    second = train(tiny_config("trainer.name=second"))

    assert first.run_dir != second.run_dir
    assert first.run_dir.name.endswith("-first")
    for name in RUN_FILES:
        assert (first.run_dir / name).is_file(), name
    assert list((first.run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert first.epochs == 2
    rows = read_history(first.run_dir)
    assert [int(float(r["epoch"])) for r in rows] == [0, 1]
    assert {"val/loss", "val/mean_accuracy", "val/acc/Male", "lr/head", "train/loss"} <= set(
        rows[0]
    )
    assert validation_columns(rows) == validation_columns(read_history(second.run_dir))
    assert first.metrics["val/loss"] == second.metrics["val/loss"]

    saved = load_config(first.run_dir / "config.yaml")
    assert saved == tiny_config("trainer.name=first")
    environment = json.loads((first.run_dir / "environment.json").read_text())
    assert environment["packages"]["torch"] == torch.__version__.split("+")[0]
    assert environment["device"]["type"] == "cpu"


def test_checkpoints_of_a_run_rebuild_the_same_model(tiny_config) -> None:
    result = train(tiny_config("trainer.epochs=1"))
    from_export = load_checkpoint(result.last)
    from_lightning = load_checkpoint(result.checkpoint)
    description = json.loads((result.best / "model.json").read_text())
    assert description["model_name"] == "facenet-mtl"
    assert description["metrics"]["val/loss"] == pytest.approx(result.best_score)
    assert description["config"]["trainer"]["epochs"] == 1
    images = torch.rand(4, 1, 36, 36)
    assert torch.equal(from_export(images), from_lightning(images))
    assert epochs_done(result.checkpoint) == 1


def test_fine_tuning_starts_from_every_weight_of_a_trained_run(tiny_config) -> None:
    first = train(tiny_config("trainer.epochs=1", "trainer.name=first"))
    trained = load_checkpoint(first.best).state_dict()
    config = tiny_config(f"model.init={first.run_dir}", "optimizer.lr=1e-6", "trainer.epochs=1")
    started = build_model(config.model, config.data.attributes).state_dict()
    assert started.keys() == trained.keys()
    assert all(torch.equal(started[k], trained[k]) for k in trained)
    fresh = build_model(tiny_config().model, None).state_dict()
    assert not all(torch.equal(fresh[k], trained[k]) for k in trained)

    tuned = train(config)  # a tiny rate keeps the trained model's validation loss
    assert tuned.metrics["val/loss"] == pytest.approx(first.metrics["val/loss"], abs=0.02)

    other = tiny_config(f"model.init={first.best}", "data.attributes=[Male,Smiling]")
    new_head = build_model(other.model, other.data.attributes)  # the backbone, a new head
    assert new_head.attributes == ("Male", "Smiling")
    kept = new_head.state_dict()
    backbone = [k for k in trained if k.startswith("backbone.")]
    assert backbone and all(torch.equal(kept[k], trained[k]) for k in backbone)


def test_decoding_path_trains_with_class_weights(tiny_config) -> None:
    overrides = ["trainer.epochs=1", "data.limit_train=64", "data.attributes=[Male,Smiling]"]
    result = train(tiny_config(*overrides, "loss.pos_weight=true", cache=False))
    assert result.epochs == 1
    assert 0.0 <= result.metrics["val/mean_accuracy"] <= 1.0
    weights = safe_torch_load(result.checkpoint)["state_dict"]["loss.pos_weight"]
    data = tiny_config(*overrides, cache=False).data
    labels = FaceDataModule(data, ["Male", "Smiling"], 36).split("train", 64).labels
    assert torch.allclose(weights, pos_weight_from_labels(labels))


def test_a_killed_run_resumes_to_the_same_result(tiny, tiny_config, launcher, tmp_path) -> None:
    epochs = ["trainer.epochs=3", "trainer.name=killed"]
    log = tmp_path / "killed.log"
    with log.open("wb") as output:
        process = subprocess.Popen([*launcher, *tiny(*epochs)], stdout=output, stderr=output)
    try:
        runs = tmp_path / "runs"
        deadline = time.monotonic() + 180
        while not list(runs.glob("*-killed/checkpoints/last.ckpt")):
            assert process.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint after 180 s"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    (run_dir,) = runs.glob("*-killed")
    assert epochs_done(run_dir / "checkpoints/last.ckpt") < 3, "the run ended before the kill"

    done = subprocess.run([*launcher, "--resume", str(run_dir)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3 epochs" in done.stdout
    rows = read_history(run_dir)
    assert [int(float(r["epoch"])) for r in rows] == [0, 1, 2]
    assert epochs_done(run_dir / "checkpoints/last.ckpt") == 3
    model = load_checkpoint(run_dir / "checkpoints/last.ckpt")
    assert model.attributes == load_checkpoint(run_dir / "best").attributes

    straight = train(tiny_config(*epochs))
    assert validation_columns(rows) == validation_columns(read_history(straight.run_dir))


def test_ddp_with_two_cpu_processes(tiny, launcher, tmp_path) -> None:
    ddp = [
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.epochs=1",
        "trainer.name=ddp",
    ]
    done = subprocess.run([*launcher, *tiny(*ddp)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (run_dir,) = (tmp_path / "runs").glob("*-ddp")
    environment = json.loads((run_dir / "environment.json").read_text())
    assert environment["world_size"] == 2
    assert len(read_history(run_dir)) == 1
    assert load_checkpoint(run_dir / "best").model_name == "facenet-mtl"

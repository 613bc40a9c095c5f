"""Every packaged recipe resolves, builds its model and takes a real training step on a handful of
real faces (with detected landmarks and boxes), so that no recipe breaks unnoticed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from faceattr.models.pretrained import INSTALLED_WEIGHTS, installed_weights_path
from faceattr.training.config import list_recipes, load_config, resolve_recipe
from faceattr.training.trainer import train


def data_overrides(recipe: str, root: str | Path) -> list[str]:
    """The recipe's data read (decoded) from ``root``: ``data.root``, or each of its sources (a
    recipe of several datasets then reads the same one as each of them, all its attributes)."""
    sources = OmegaConf.load(resolve_recipe(recipe)).get("data", {}).get("sources") or []
    if not sources:
        return [f"data.root={root}", "data.cache=null"]
    keys = {"root": root, "format": "null", "cache": "null", "attributes": "null"}
    return [f"data.sources.{i}.{k}={v}" for i in range(len(sources)) for k, v in keys.items()]


def recipe_overrides(recipe: str) -> list[str]:
    """What a recipe needs besides its data to run here: the model it fine-tunes (the shipped
    one), a random start where it freezes a backbone it has no weights for, a 64x64 input for
    the large networks (one step is what is checked, not a figure)."""
    config = load_config(recipe, [*data_overrides(recipe, "."), "model.init=shipped"])
    fine_tuning = "init: ???" in resolve_recipe(recipe).read_text()
    overrides = ["model.init=shipped"] if fine_tuning else []
    if config.optimizer.freeze_epochs and config.model.pretrained is None:
        overrides.append("optimizer.freeze_epochs=0")
    size = config.model.args.get("input_size")
    if size is not None and min(size) > 64 and not fine_tuning:
        overrides.append("model.args.input_size=[64,64]")
    return overrides


@pytest.mark.parametrize("recipe", list_recipes())
def test_every_recipe_takes_a_real_training_step(
    recipe: str, small_detected_celeba: Path, tmp_path: Path
) -> None:
    overrides = [*data_overrides(recipe, "."), "model.init=shipped"]
    pretrained = load_config(recipe, overrides).model.pretrained
    if pretrained in INSTALLED_WEIGHTS:
        try:
            installed_weights_path(pretrained)
        except FileNotFoundError:
            pytest.skip(
                f"weights {pretrained!r} not installed: {INSTALLED_WEIGHTS[pretrained].install}"
            )
    settings = [
        *data_overrides(recipe, small_detected_celeba),
        "data.workers=0",
        "data.batch_size=8",
        "data.limit_train=null",
        "data.limit_val=null",
        "trainer.epochs=1",
        "trainer.max_minutes=null",
        "trainer.progress=false",
        f"trainer.output_dir={tmp_path}",
        *recipe_overrides(recipe),
    ]
    result = train(load_config(recipe, settings))
    assert result.epochs == 1
    assert math.isfinite(result.metrics["val/loss"])
    assert (result.best / "model.safetensors").is_file()

"""The recipes in configs/ stay valid and documented; overrides and errors name their keys."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from faceattr.models import INSTALLED_WEIGHTS, AttributeModel
from faceattr.training.config import ConfigError, TrainConfig, load_config, save_config
from faceattr.training.trainer import build_loss, build_model

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SEED_RECIPES = {
    "facenet_mtl.yaml": ("facenet-mtl", 6, (36, 36)),
    "facenet_bis.yaml": ("facenet-bis", 5, (36, 36)),
    "scratch_cnn.yaml": ("scratch-cnn", 40, (150, 150)),
    "xception_transfer.yaml": ("xception-transfer", 40, (150, 150)),
    "efficientnetv2_multioutput.yaml": ("efficientnetv2-multioutput", 3, (224, 224)),
    "affact_resnet50.yaml": ("resnet50-affact", 40, (224, 224)),
    "affact_ext.yaml": ("resnet50-affact-ext", 40, (224, 224)),
    "resnet50_classweights.yaml": ("resnet50-classweights", 40, (64, 64)),
    "densenet121_classweights.yaml": ("densenet121-classweights", 40, (64, 64)),
}
KEY_LINE = re.compile(r"^\s*[A-Za-z_][\w-]*:")


def recipes() -> list[Path]:
    return sorted(CONFIGS.glob("*.yaml"))


def data_overrides(recipe: Path, root: str) -> list[str]:
    """``data.root=ROOT``, or for a recipe of several sources ``data.sources.<i>.root=ROOT/<i>``."""
    sources = OmegaConf.load(recipe).get("data", {}).get("sources") or []
    if not sources:
        return [f"data.root={root}"]
    return [f"data.sources.{i}.root={root}/{i}" for i in range(len(sources))]


@pytest.mark.parametrize("recipe", recipes(), ids=lambda p: p.stem)
def test_recipe_loads_and_builds_its_model(recipe: Path, installed: Callable[[str], Path]) -> None:
    overrides = data_overrides(recipe, "/data")
    if "init: ???" in recipe.read_text():  # a fine-tuning stage: it needs the model it starts from
        with pytest.raises(ConfigError, match=r"model\.init"):
            load_config(recipe, overrides)
        overrides.append("model.init=null")
    if "freeze_epochs: " in recipe.read_text() and "pretrained: null" in recipe.read_text():
        # a frozen backbone needs the ImageNet weights it was meant to start from
        with pytest.raises(ConfigError, match=r"freeze_epochs: .* randomly initialised"):
            load_config(recipe, overrides)
        assert load_config(recipe, [*overrides, "model.pretrained=x.pth"]).model.pretrained
        overrides.append("optimizer.freeze_epochs=0")
    config = load_config(recipe, overrides)
    if config.model.pretrained in INSTALLED_WEIGHTS:
        installed(str(config.model.pretrained))  # else skip, saying how to install them
    with torch.device("meta"):  # construction only: no weights are initialised
        model = build_model(config.model, config.data.attributes)
    assert isinstance(model, AttributeModel)
    assert build_loss(config.loss, model).attributes == model.attributes
    if recipe.name in SEED_RECIPES:
        name, count, size = SEED_RECIPES[recipe.name]
        assert (model.model_name, len(model.attributes), model.input_config.size) == (
            name,
            count,
            size,
        )


@pytest.mark.parametrize("recipe", recipes(), ids=lambda p: p.stem)
def test_recipe_explains_every_key(recipe: Path) -> None:
    lines = recipe.read_text().splitlines()
    assert lines[0].startswith("#"), "a recipe opens with a comment naming its seed"
    bare = [
        f"{recipe.name}:{n}: {line.strip()}"
        for n, line in enumerate(lines, start=1)
        if KEY_LINE.match(line) and "#" not in line and not lines[n - 2].strip().startswith("#")
    ]
    assert not bare, "keys without a comment:\n" + "\n".join(bare)


def test_recipe_needs_the_data_root() -> None:
    with pytest.raises(ConfigError, match=r"data\.root"):
        load_config(CONFIGS / "facenet_mtl.yaml")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("data.batch_size=many", "data.batch_size"),
        ("data.nope=1", "data.nope"),
        ("data.crop=nose", "data.crop"),
        ("optimizer.lr=-1", "optimizer.lr"),
        ("augment.rotation_sigma=-5", "augment.rotation_sigma"),
        ("trainer.precision=64", "trainer.precision"),
    ],
)
def test_a_bad_override_names_its_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        load_config(CONFIGS / "facenet_mtl.yaml", ["data.root=/data", override])


def test_an_override_without_equals_sign_is_refused() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["data.root"])


def test_a_yaml_error_names_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("data:\n  root: /x\n  crop: [affact\nmodel:\n  name: facenet-mtl\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml:\d+"):
        load_config(broken)


def test_a_bad_key_in_a_recipe_names_file_line_and_key(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("data:\n  root: /x\nmodel:\n  name: facenet-mtl\n  nope: 3\n")
    with pytest.raises(ConfigError, match=r"recipe\.yaml:5: model\.nope"):
        load_config(recipe)


def test_overrides_win_and_the_saved_config_reads_back(tmp_path: Path) -> None:
    config = load_config(
        CONFIGS / "affact_resnet50.yaml",
        ["data.root=/data", "trainer.epochs=2", "model.args.input_size=[112,112]"],
    )
    assert config.trainer.epochs == 2
    assert config.model.args["input_size"] == [112, 112]
    assert config.schedule.plateau_patience == 2
    assert config.augment.jitter().rotation_sigma == 20.0
    saved = save_config(config, tmp_path / "config.yaml")
    assert load_config(saved) == config
    assert isinstance(load_config(saved), TrainConfig)

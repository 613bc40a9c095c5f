"""Fixtures of the training tests: one small synthetic CelebA folder and its packed cache per
session, tiny runs over them, and a launcher for ``faceattr train`` in a subprocess."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from faceattr.data.cache_prepare import prepare_cache
from faceattr.data.synth.generate import generate_dataset
from faceattr.training.config import TrainConfig, load_config

SYNTH_IMAGES = 200
CACHE_SIZE = 48

LAUNCHER = """\
import faceattr.cli.train  # noqa: F401  (registers `faceattr train`)
from faceattr.cli import main

main()
"""


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic CelebA folder of 200 faces with landmarks (about 160 train, 20 val, 20 test)."""
    root = tmp_path_factory.mktemp("synth") / "celeba"
    generate_dataset(root, SYNTH_IMAGES, seed=0, progress=False)
    return root


@pytest.fixture(scope="session")
def synth_cache(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packed cache of ``synth_root`` at 48x48."""
    out = tmp_path_factory.mktemp("cache") / "cache"
    prepare_cache(synth_root, out, size=CACHE_SIZE, workers=0, progress=False)
    return out


def tiny_overrides(
    root: Path, cache: Path | None, output_dir: Path, overrides: Sequence[str] = ()
) -> list[str]:
    """facenet-mtl at 36x36 on the synthetic faces, two quick epochs, no progress bar."""
    return [
        f"data.root={root}",
        f"data.cache={cache if cache is not None else 'null'}",
        f"data.cache_size={CACHE_SIZE}",
        "data.batch_size=32",
        "model.name=facenet-mtl",
        "augment.mirror_enabled=true",
        "augment.rotation_enabled=true",
        "trainer.epochs=2",
        "trainer.progress=false",
        "trainer.log_every_n_steps=1",
        f"trainer.output_dir={output_dir}",
        "trainer.name=tiny",
        *overrides,
    ]


TinyOverrides = Callable[..., list[str]]


@pytest.fixture
def tiny(synth_root: Path, synth_cache: Path, tmp_path: Path) -> TinyOverrides:
    """``tiny(*overrides, cache=True)``: the override list of a tiny cached run into
    ``tmp_path/runs`` (``cache=False``: decode the JPEGs)."""

    def make(*overrides: str, cache: bool = True) -> list[str]:
        chosen = synth_cache if cache else None
        return tiny_overrides(synth_root, chosen, tmp_path / "runs", overrides)

    return make


@pytest.fixture
def tiny_config(tiny: TinyOverrides) -> Callable[..., TrainConfig]:
    """``tiny_config(*overrides)``: the :class:`TrainConfig` of ``tiny(*overrides)``."""
    return lambda *overrides, cache=True: load_config(None, tiny(*overrides, cache=cache))


@pytest.fixture
def launcher(tmp_path: Path) -> list[str]:
    """The command starting ``faceattr train`` in a fresh interpreter (as the console script
    would; a file, so Lightning's DDP launcher can start it again for the other processes)."""
    script = tmp_path / "faceattr_train.py"
    script.write_text(LAUNCHER)
    return [sys.executable, str(script), "train"]

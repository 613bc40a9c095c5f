"""The shipped model's second edition (issue 18): its two recipes resolve with protocol T's jitter
and CelebA's val split as the judge, train two steps each on the real samples of CelebA, CelebA-HQ
and UTKFace, and never train on a val or test image of CelebA's partition, checked on image ids
against the annotation files read here, not through the loaders."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from faceattr.attributes import ATTRIBUTES
from faceattr.data.loaders.celebahq import MAPPING_FILE
from faceattr.geometry.jitter import AffactJitter
from faceattr.training.config import load_config
from faceattr.training.datamodule import FaceDataModule
from faceattr.training.trainer import train

STAGES = ("shipped_v2_mobilenetv2", "shipped_v2_mobilenetv2_160")
CELEBA, CELEBAHQ, UTKFACE = range(3)
"""The sources' indices in the recipes."""


def roots(celeba: str | Path, celebahq: str | Path, utkface: str | Path) -> list[str]:
    """The recipes' three folders."""
    folders = (celeba, celebahq, utkface)
    return [f"data.sources.{i}.root={folder}" for i, folder in enumerate(folders)]


def table(path: Path, columns: list[str]) -> pd.Series:
    """A two-column annotation file (CelebA's partition or identities, the HQ mapping) as a
    Series from its first named column to its second."""
    frame = pd.read_csv(path, sep=r"\s+", header=None, names=columns, usecols=[0, 1], dtype=str)
    return frame.set_index(columns[0])[columns[1]]


@pytest.mark.parametrize("stage", STAGES)
def test_the_recipes_train_on_three_sources_at_protocol_t_judged_on_celeba_val(stage: str) -> None:
    config = load_config(stage, [*roots("/c", "/hq", "/u"), "model.init=/stage1"])
    sources = config.data.sources
    assert [(s.label(), s.format) for s in sources] == [
        ("celeba", "celeba"),
        ("celebahq", "celebahq"),
        ("utkface", "utkface"),
    ]
    assert sources[CELEBAHQ].annotations == ["/c"]  # CelebA's partition, through the mapping
    assert sources[UTKFACE].attributes == ["Male", "age"]
    assert config.augment.jitter() == AffactJitter()  # seed 003's values: protocol T's
    assert (config.schedule.monitor, config.schedule.monitor_mode) == (
        "val/celeba/mean_accuracy",
        "max",
    )
    assert config.data.val_split == "val" and config.data.crop == "affact"
    size = 128 if stage == STAGES[0] else 160
    assert config.model.args["input_size"] == [size, size]


def test_training_never_sees_a_val_or_test_image_of_celebas_partition(
    celeba_root: Path, celebahq_root: Path, utkface_root: Path
) -> None:
    # the whole images, since the samples here have no landmarks: the crop chooses no image
    overrides = [*roots(celeba_root, celebahq_root, utkface_root), "data.crop=image"]
    config = load_config(STAGES[0], overrides)
    data = FaceDataModule(config.data, (*ATTRIBUTES, "age"), (128, 128))
    data.setup("fit")
    train_split = data.splits["train"]
    trained = [set(train_split.image_ids[train_split.source == i]) for i in range(3)]

    partition = table(celeba_root / "list_eval_partition.txt", ["image", "split"])
    identity = table(celeba_root / "identity_CelebA.txt", ["image", "identity"])
    mapping = pd.read_csv(celebahq_root / MAPPING_FILE, sep=r"\s+")
    pairs = zip(mapping["idx"], mapping["orig_file"], strict=True)
    original = {f"{k}.jpg": name for k, name in pairs}
    shared = {p.name for p in (celeba_root / "img_align_celeba").iterdir()}
    held_out = {name for name in shared if partition[name] != "0"}  # the sample's val and test
    assert len(shared) == 20_000 and len(held_out) == 4_000

    # CelebA: exactly the sample's 16,000 training images
    assert trained[CELEBA] == shared - held_out
    # CelebA-HQ: every present image whose CelebA original is in CelebA's train partition, no other
    present_hq = {p.name for p in (celebahq_root / "CelebA-HQ-img").iterdir()}
    hq_train = {k for k in present_hq if partition[original[k]] == "0"}
    assert trained[CELEBAHQ] == hq_train and len(hq_train) == 481
    assert {partition[original[k]] for k in trained[CELEBAHQ]} == {"0"}
    # the HQ images that repeat the shared sample's val and test images in another crop (4 val,
    # 6 test in the 600 of the sample): none trained, each in the HQ split of its original
    repeats = {k for k in present_hq if original[k] in held_out}
    assert len(repeats) == 10 and not repeats & trained[CELEBAHQ]
    for split, code in (("val", "1"), ("test", "2")):
        part = data.split(split)
        hq_split = set(part.image_ids[part.source == CELEBAHQ])
        assert {k for k in repeats if partition[original[k]] == code} <= hq_split
    # as photos and as people: no trained face is a held-out one or shares its identity
    photos = trained[CELEBA] | {original[k] for k in trained[CELEBAHQ]}
    assert not photos & held_out
    assert not {identity[p] for p in photos} & {identity[p] for p in held_out}
    # the epochs are chosen on CelebA's 2,000 val images
    val = data.splits["val"]
    assert set(val.image_ids[val.source == CELEBA]) == {n for n in held_out if partition[n] == "1"}
    # UTKFace: its drawn partition, train apart from val and test
    held_utk = data.split("val").image_ids, data.split("test").image_ids
    assert trained[UTKFACE] and not trained[UTKFACE] & set(np.concatenate(held_utk))


def test_without_celebas_partition_celebahq_has_no_training_split(
    celeba_root: Path, celebahq_root: Path, utkface_root: Path, tmp_path: Path
) -> None:
    hq = tmp_path / "celebahq"  # the files of the sample, but no CelebA folder to read
    hq.mkdir()
    for name in ("CelebA-HQ-img", "CelebAMask-HQ-attribute-anno.txt", MAPPING_FILE):
        (hq / name).symlink_to(celebahq_root / name)
    overrides = [*roots(celeba_root, hq, utkface_root), "data.crop=image"]
    overrides.append("data.sources.1.annotations=[]")
    data = FaceDataModule(load_config(STAGES[0], overrides).data, ATTRIBUTES, (128, 128))
    with pytest.raises(ValueError, match="no partition, so no 'train' split"):
        data.setup("fit")


def test_both_stages_train_two_steps_on_the_real_samples(
    small_detected_celeba: Path,
    small_detected_celebahq: Path,
    small_detected_utkface: Path,
    tmp_path: Path,
) -> None:
    settings = [
        *roots(small_detected_celeba, small_detected_celebahq, small_detected_utkface),
        "data.workers=0",
        "data.batch_size=12",
        "data.limit_train=8",  # of each source: 24 images, two batches of 12
        "data.limit_val=4",
        "trainer.epochs=1",
        "trainer.progress=false",
        f"trainer.output_dir={tmp_path}",
    ]
    run = None
    for stage in STAGES:
        init = [] if run is None else [f"model.init={run}"]
        config = load_config(stage, [*settings, *init])
        data = FaceDataModule(config.data, (*ATTRIBUTES, "age"), (128, 128))
        data.setup("fit")
        assert len(data.train_dataloader()) == 2
        result = train(config)
        metrics = result.metrics
        assert result.epochs == 1 and (result.best / "model.safetensors").is_file()
        assert math.isfinite(metrics["val/celeba/mean_accuracy"])
        assert math.isfinite(metrics["val/celebahq/mean_accuracy"])
        assert 0 <= metrics["val/utkface/mae/age"] < 116
        assert "val/utkface/acc/Male" in metrics and "val/utkface/acc/Smiling" not in metrics
        run = result.run_dir

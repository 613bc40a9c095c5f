"""Several datasets in one run: the union schema, the per-epoch mixing of the sources, their
configuration errors, and a tiny run over a synthetic CelebA (cached) and a UTKFace-format folder
of synthetic faces (decoded) that mixes them in its batches and reports each one."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faceattr.data.formats import LandmarkTable, read_attributes, read_landmarks, write_landmarks
from faceattr.data.schema import CELEBA_SCHEMA, Attribute, Schema, SchemaError, union_schema
from faceattr.training.config import ConfigError, load_config
from faceattr.training.datamodule import (
    FaceDataModule,
    ShardedBatches,
    epoch_draw,
    source_counts,
)
from faceattr.training.trainer import train

UTK_IMAGES = 120
UTK_SIZE = 200
SYNTH_CACHE_SIZE = 48
"""The side of the session's synthetic cache (``synth_cache``)."""


@pytest.fixture(scope="module", autouse=True)
def annotation_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A private ``$FACEATTR_CACHE``: UTKFace's generated partitions stay out of the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEATTR_CACHE", str(tmp_path_factory.mktemp("faceattr-cache")))
        yield


@pytest.fixture(scope="module")
def utk_root(synth_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A UTKFace-format folder of the first 120 synthetic faces, 200x200, named
    ``<age>_<gender>_<race>_<stamp>.jpg.chip.jpg`` (age 20 + 30 Male + noise), with the
    detector's landmark file beside them."""
    root = tmp_path_factory.mktemp("utk") / "utkface"
    (root / "UTKFace").mkdir(parents=True)
    table = read_attributes(synth_root / "list_attr_celeba.txt")
    landmarks = read_landmarks(synth_root / "list_landmarks_align_celeba.txt")
    male = table.labels[:, table.names.index("Male")] == 1
    ages = 20 + 30 * male + np.random.default_rng(0).integers(0, 5, len(male))
    names, points = [], []
    for i, image_id in enumerate(table.image_ids[:UTK_IMAGES]):
        name = f"{ages[i]}_{0 if male[i] else 1}_{i % 5}_{20170101000000000 + i}.jpg.chip.jpg"
        with Image.open(synth_root / "img_align_celeba" / image_id) as image:
            scale = np.array([UTK_SIZE / image.width, UTK_SIZE / image.height])
            image.resize((UTK_SIZE, UTK_SIZE)).save(root / "UTKFace" / name)
        names.append(name)
        points.append(landmarks.landmarks[list(landmarks.image_ids).index(image_id)] * scale)
    write_landmarks(root / "landmarks.txt", LandmarkTable(np.array(names), np.stack(points)))
    return root


def two_sources(celeba: Path, cache: Path | None, utkface: Path, *more: str) -> list[str]:
    """Overrides of a run over the synthetic CelebA (cached when ``cache``) and ``utkface``
    (decoded), the latter teaching Male and age."""
    return [
        f"data.sources=[{{name: celeba, root: '{celeba}', cache: {cache or 'null'}}}, "
        f"{{name: utkface, root: '{utkface}', format: utkface, attributes: [Male, age]}}]",
        *more,
    ]


def test_the_union_aligns_attributes_by_name_and_names_a_conflict() -> None:
    age = Attribute("age", "numeric", low=0, high=116, unit="years")
    utkface = Schema((Attribute("Male"), age))
    union = union_schema({"celeba": CELEBA_SCHEMA, "utkface": utkface})
    assert union.names == (*CELEBA_SCHEMA.names, "age")
    assert union["age"] == age and union["Male"].kind == "binary"
    other = Schema((Attribute("age", "numeric", low=0, high=100, unit="years"),))
    with pytest.raises(SchemaError, match=r"'age': utkface declares it numeric 0\.\.116 years, "):
        union_schema({"utkface": utkface, "mine": other})
    with pytest.raises(SchemaError, match=r"celeba declares it binary, mine categorical"):
        union_schema(
            {
                "celeba": CELEBA_SCHEMA,
                "mine": Schema((Attribute("Male", "categorical", ("a", "b")),)),
            }
        )


def test_an_epoch_draws_each_source_in_proportion_to_its_weight() -> None:
    assert source_counts([1000, 100], [1, 1]).tolist() == [550, 550]
    assert source_counts([7, 3], [1, 2]).tolist() == [3, 7]  # 3.33, 6.67: the larger remainder
    source = np.repeat([0, 1], [1000, 100])
    drawn = epoch_draw(source, [1, 1], np.random.default_rng(0))
    assert len(drawn) == 1100 and np.bincount(source[drawn]).tolist() == [550, 550]
    assert len(np.unique(drawn[source[drawn] == 0])) == 550  # a subset: no image twice
    assert set(np.bincount(drawn[source[drawn] == 1] - 1000)) == {5, 6}  # each 5 or 6 times
    alone = np.zeros(50, np.int64)
    assert np.array_equal(epoch_draw(alone, [3.0], np.random.default_rng(0)), np.arange(50))


def test_the_sampler_mixes_batches_by_weight_reproducibly_and_shards_them() -> None:
    source = np.repeat([0, 1], [900, 300])
    positions = np.arange(1200) + 7

    def epoch(epoch: int, rank: int = 0, world: int = 1) -> list[list[int]]:
        sampler = ShardedBatches(
            positions, 32, seed=5, rank=rank, world=world, source=source, weights=[0.75, 1.25]
        )
        sampler.set_epoch(epoch)
        return list(sampler)

    first = epoch(0)
    assert first == epoch(0) and first != epoch(1)  # seeded by (seed, epoch): resumes redo it
    shares = []
    for e in range(5):
        drawn = np.concatenate(epoch(e)) - 7
        shares.append(np.mean(source[drawn] == 1))
        mixed = [np.mean(source[np.asarray(b) - 7] == 1) for b in epoch(e)]
        assert 0.3 < np.median(mixed) < 0.9  # batches mix the sources
    assert np.mean(shares) == pytest.approx(1.25 / 2.0, abs=0.02)
    shards = [np.concatenate(epoch(3, rank, 2)) for rank in range(2)]
    assert len(shards[0]) == len(shards[1]) == 1200 // 2 // 32 * 32
    together = np.sort(np.concatenate(shards))
    whole = ShardedBatches(positions, 32, seed=5, source=source, weights=[0.75, 1.25])
    whole.set_epoch(3)
    assert np.isin(together, np.concatenate(list(whole))).all()
    single = ShardedBatches(positions, 32, seed=5)
    assert list(single) == list(ShardedBatches(positions, 32, seed=5, weights=[2.0]))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.sources.1.weight=0"], r"data\.sources\[1\]\.weight: must be positive"),
        (["data.sources.1.name=celeba"], r"data\.sources\[1\]\.name: 'celeba' names an earlier"),
        (["data.sources.0.name=val loss"], r"data\.sources\[0\]\.name: 'val loss' cannot name"),
        (["data.sources.1.name=acc"], r"data\.sources\[1\]\.name: 'acc' cannot name"),
        (["data.sources.0.format=celebb"], r"data\.sources\[0\]\.format: unknown format"),
        (["data.sources.1.attributes=[]"], r"data\.sources\[1\]\.attributes: must name"),
        (["data.cache=/c"], r"data\.cache: set it per source"),
        (["data.root=/a"], r"data\.root: set it per source"),
        (["data.folds=3", "data.fold=0"], r"data\.folds: cross-validation reads one dataset"),
        (["data.sources.1.weight=lots"], r"data\.sources\[1\]\.weight"),
    ],
)
def test_a_bad_source_setting_is_one_error_naming_its_key(
    overrides: list[str], message: str
) -> None:
    roots = ["data.sources.0.root=/a", "data.sources.1.root=/b"]
    with pytest.raises(ConfigError, match=message):
        load_config("multi_source_mobilenetv2", [*roots, *overrides])


def test_the_recipe_sources_are_overridden_by_index() -> None:
    with pytest.raises(
        ConfigError, match=r"data\.sources\[0\]\.root: .*set data\.sources\.0\.root="
    ):
        load_config("multi_source_mobilenetv2", [])
    config = load_config(
        "multi_source_mobilenetv2",
        ["data.sources.0.root=/a", "data.sources.1.root=/b", "data.sources.1.cache=/c"],
    )
    celeba, utkface = config.data.sources
    assert (celeba.root, celeba.cache, celeba.weight) == ("/a", None, 0.8)
    assert (utkface.root, utkface.cache, utkface.attributes) == ("/b", "/c", ["Male", "age"])
    assert [s.label() for s in config.data.source_list()] == ["celeba", "utkface"]
    # a single-source recipe's data.root: ??? gives way to a list of sources
    listed = load_config("shipped_mobilenetv2", ["data.sources=[{root: /a}, {root: /b}]"])
    assert [s.label() for s in listed.data.source_list()] == ["a", "b"]
    with pytest.raises(ConfigError, match=r"data\.root: missing value"):
        load_config("shipped_mobilenetv2", [])


def test_a_run_mixes_a_cached_and_a_decoded_source_and_reports_each(
    synth_root: Path, synth_cache: Path, utk_root: Path, tmp_path: Path
) -> None:
    overrides = two_sources(
        synth_root,
        synth_cache,
        utk_root,
        "data.sources.1.weight=0.5",
        f"data.cache_size={SYNTH_CACHE_SIZE}",
        "data.batch_size=32",
        "model.name=facenet-mtl",
        "loss.kind_weights={numeric: 0.1}",
        "trainer.epochs=1",
        "trainer.progress=false",
        f"trainer.output_dir={tmp_path / 'runs'}",
    )
    config = load_config(None, overrides)
    result = train(config)
    metrics = result.metrics
    seed_heads = ("Male", "Mustache", "Eyeglasses", "No_Beard", "Wearing_Hat", "Bald")
    for name in seed_heads:
        assert f"val/celeba/acc/{name}" in metrics
    assert "val/celeba/mae/age" not in metrics  # CelebA teaches no age
    assert {"val/utkface/acc/Male", "val/utkface/mae/age", "val/utkface/loss"} <= set(metrics)
    assert "val/utkface/acc/Bald" not in metrics and "race" not in str(sorted(metrics))
    shares = {"celeba": 1 / 1.5, "utkface": 0.5 / 1.5}
    weighted = sum(share * metrics[f"val/{name}/loss"] for name, share in shares.items())
    assert metrics["val/loss"] == pytest.approx(weighted, rel=1e-5)
    assert math.isfinite(metrics["val/mean_accuracy"])
    header = (result.run_dir / "metrics.csv").read_text().splitlines()[0]
    assert "val/utkface/mae/age" in header and "val/celeba/mean_accuracy" in header

    data = FaceDataModule(config.data, (*seed_heads, "age"), 36, seed=0)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    from_utkface = ~torch.isnan(batch.labels[:, -1])
    assert 0 < int(from_utkface.sum()) < len(batch)  # one batch, both sources
    assert torch.isnan(batch.labels[from_utkface, 1:6]).all()  # UTKFace: only Male and age
    assert not torch.isnan(batch.labels[:, 0]).any()  # both label Male
    utk_train = len(data.source_splits["train"][1].positions)
    celeba_train = len(data.source_splits["train"][0].positions)
    drawn = np.concatenate(list(data.train_dataloader().sampler))  # type: ignore[arg-type]
    total = celeba_train + utk_train
    assert np.sum(drawn >= len(data.source_splits["train"][0].dataset)) == pytest.approx(
        (total // 32 * 32) / 3, abs=12
    )


def test_a_source_teaching_an_unknown_attribute_is_named(synth_root: Path, utk_root: Path) -> None:
    overrides = two_sources(synth_root, None, utk_root, "data.sources.1.attributes=[age, beard]")
    config = load_config(None, [*overrides, "model.name=facenet-mtl"])
    with pytest.raises(KeyError, match="utkface has no attribute 'beard' to teach"):
        FaceDataModule(config.data, ("Male", "age"), 36).setup("fit")
    config = load_config(None, [*two_sources(synth_root, None, utk_root), "model.name=facenet-mtl"])
    with pytest.raises(KeyError, match=r"no source \(celeba, utkface\) teaches attribute 'race'"):
        FaceDataModule(config.data, ("Male", "race"), 36).setup("fit")
    with pytest.raises(KeyError, match="source utkface teaches none of Smiling"):
        FaceDataModule(config.data, ("Smiling",), 36).setup("fit")


def test_the_real_celeba_and_utkface_samples_train_together(
    celeba_root: Path, tmp_path: Path
) -> None:
    utkface = celeba_root.parent / "utkface"
    if not (utkface / "UTKFace").is_dir():
        pytest.skip(f"real UTKFace sample not found beside the CelebA sample ({utkface})")
    overrides = [
        *two_sources(celeba_root, None, utkface),
        "data.crop=image",  # neither sample ships landmarks: the whole aligned image
        "data.cache_size=48",
        "data.limit_train=64",  # of each source
        "data.limit_val=48",
        "data.batch_size=16",
        "model.name=facenet-mtl",
        "data.attributes=[Male, Smiling, age]",
        "loss.kind_weights={numeric: 0.1}",
        "trainer.epochs=1",
        "trainer.progress=false",
        f"trainer.output_dir={tmp_path / 'runs'}",
    ]
    metrics = train(load_config(None, overrides)).metrics
    assert {"val/celeba/acc/Smiling", "val/utkface/acc/Male"} <= set(metrics)
    assert "val/utkface/acc/Smiling" not in metrics
    assert 0 <= metrics["val/utkface/mae/age"] < 116
    assert math.isfinite(metrics["val/loss"])

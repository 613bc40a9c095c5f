"""The data module: the cache and the JPEG path give the same batches; DDP shards and epochs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from faceattr.training.config import DataConfig
from faceattr.training.datamodule import FaceDataModule, ShardedBatches, cache_is_ready

ATTRIBUTES = ("Male", "Smiling", "Eyeglasses")


def module(root: Path, cache: Path | None, crop: str = "affact") -> FaceDataModule:
    data = DataConfig(
        root=str(root), cache=None if cache is None else str(cache), cache_size=48, crop=crop
    )
    return FaceDataModule(data, ATTRIBUTES, (36, 36), seed=0)


@pytest.mark.parametrize("crop", ["affact", "image", "seed000-a"])
def test_cache_and_decoding_give_the_same_batches(
    synth_root: Path, synth_cache: Path, crop: str
) -> None:
    cached, decoded = module(synth_root, synth_cache, crop), module(synth_root, None, crop)
    from_cache, from_jpeg = cached.split("val"), decoded.split("val")
    assert np.array_equal(from_cache.labels, from_jpeg.labels)
    a = from_cache.dataset[from_cache.positions[:6].tolist()]
    b = from_jpeg.dataset[from_jpeg.positions[:6].tolist()]
    assert a.images.shape == b.images.shape == (6, 3, 48, 48)
    assert (a.images.int() - b.images.int()).abs().max() <= 1
    assert torch.allclose(a.crops, b.crops, atol=1e-3)
    assert torch.equal(a.labels, b.labels)


def test_prepare_writes_the_cache_once(synth_root: Path, synth_cache: Path, tmp_path: Path) -> None:
    data = DataConfig(root=str(synth_root), cache=str(tmp_path / "cache"), cache_size=32)
    faces = FaceDataModule(data, ATTRIBUTES, (36, 36))
    (source,) = data.source_list()
    assert not cache_is_ready(source, data)
    faces.prepare_data()
    assert cache_is_ready(source, data)
    source.cache = str(synth_cache)
    assert not cache_is_ready(source, data)  # 48 px, not 32
    faces.setup("fit")
    assert faces.train_labels().shape[1] == 3
    assert len(faces.train_dataloader()) == len(faces.splits["train"].positions) // 64


def test_training_shards_are_even_whole_batches_changing_every_epoch() -> None:
    positions = np.arange(103)
    shards = [ShardedBatches(positions, 10, seed=3, rank=r, world=2) for r in range(2)]
    seen = [[i for batch in shard for i in batch] for shard in shards]
    assert len(seen[0]) == len(seen[1]) == 50
    assert not set(seen[0]) & set(seen[1])
    assert len(shards[0]) == len(list(shards[0])) == 5
    for shard in shards:
        shard.set_epoch(1)
    assert [i for batch in shards[0] for i in batch] != seen[0]
    assert all(batch == sorted(batch) for batch in shards[0])


def test_evaluation_shards_cover_every_image_once() -> None:
    positions = np.arange(7)
    shards = [
        ShardedBatches(positions, 2, shuffle=False, rank=r, world=3, drop_last=False)
        for r in range(3)
    ]
    covered = sorted(i for shard in shards for batch in shard for i in batch)
    assert covered == list(range(7))
    assert [len(s) for s in shards] == [2, 1, 1]

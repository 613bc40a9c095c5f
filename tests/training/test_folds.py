"""Identity-disjoint folds: every identity in one fold, every row in one fold, balanced sizes, on
made-up identities, the real sample's and through the data module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceattr.data.record import FaceDataset
from faceattr.training.config import ConfigError, DataConfig
from faceattr.training.datamodule import FaceDataModule
from faceattr.training.folds import assign_folds


def assert_identity_disjoint(identity: np.ndarray, fold: np.ndarray, folds: int) -> None:
    assert fold.shape == identity.shape
    assert set(np.unique(fold)) == set(range(folds))
    for person in np.unique(identity[identity >= 0]):
        assert len(np.unique(fold[identity == person])) == 1, person


def test_folds_are_identity_disjoint_balanced_and_seeded() -> None:
    identity = np.random.default_rng(0).integers(0, 300, 2000)
    fold = assign_folds(identity, 5, seed=1)
    assert_identity_disjoint(identity, fold, 5)
    sizes = np.bincount(fold)
    assert sizes.sum() == len(identity)
    assert sizes.max() - sizes.min() <= np.bincount(identity).max()
    assert np.array_equal(fold, assign_folds(identity, 5, seed=1))
    assert not np.array_equal(fold, assign_folds(identity, 5, seed=2))


def test_rows_without_identity_are_identities_of_their_own() -> None:
    identity = np.array([7, 7, 7, -1, -1, -1, 3, 3])
    fold = assign_folds(identity, 2)
    assert_identity_disjoint(identity, fold, 2)
    assert np.bincount(fold).tolist() == [4, 4]


def test_bad_fold_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        assign_folds(np.arange(10), 1)
    with pytest.raises(ValueError, match="got 3"):
        assign_folds(np.array([1, 1, 2, 2, 3]), 4)


def test_folds_of_the_real_sample(real_celeba: FaceDataset) -> None:
    rows = real_celeba.split_indices(["train", "val"])
    assert real_celeba.identity is not None
    identity = real_celeba.identity[rows]
    fold = assign_folds(identity, 5)
    assert_identity_disjoint(identity, fold, 5)
    sizes = np.bincount(fold)
    assert sizes.sum() == len(rows) == 18_000
    assert sizes.max() - sizes.min() <= np.bincount(identity).max()


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"fold": 0}, "data.fold"),
        ({"folds": 1, "fold": 0}, "data.folds"),
        ({"folds": 3, "fold": 3}, "data.fold"),
        ({"folds": 3}, "data.fold"),
        ({"folds": 3, "fold": 0, "fold_splits": ["train", "dev"]}, "data.fold_splits"),
        ({"folds": 3, "fold": 0, "val_split": "test"}, "data.val_split"),
    ],
)
def test_fold_settings_are_checked(fields: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        DataConfig(root="x", **fields)  # type: ignore[arg-type]


def test_the_data_module_trains_on_the_other_folds(synth_root: Path, synth_cache: Path) -> None:
    def data_module(fold: int, cache: Path | None) -> FaceDataModule:
        cache_name = str(cache) if cache is not None else None
        data = DataConfig(root=str(synth_root), cache=cache_name, cache_size=48, folds=3, fold=fold)
        return FaceDataModule(data, ("Male",), (36, 36))

    faces = data_module(0, synth_cache)
    cache = faces.open_source()
    pool = np.concatenate([cache.split_indices("train"), cache.split_indices("val")])
    held_out = []
    for fold in range(3):
        faces = data_module(fold, synth_cache)
        train, val = faces.split("train").positions, faces.split("val").positions
        assert not set(cache.identity[train]) & set(cache.identity[val])
        assert sorted([*train, *val]) == sorted(pool)
        assert np.array_equal(faces.split("test").positions, cache.split_indices("test"))
        assert len(data_module(fold, None).split("val").positions) == len(val)
        held_out.extend(val)
    assert sorted(held_out) == sorted(pool)

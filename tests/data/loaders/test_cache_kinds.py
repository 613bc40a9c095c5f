"""A packed cache of a dataset with numeric and categorical attributes keeps their kinds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceattr.data.cache import INFO_FILE, CacheInfo, PackedCache
from faceattr.data.cache_prepare import prepare_cache
from faceattr.data.loaders import load_dataset
from faceattr.training.config import DataConfig
from faceattr.training.trainer import labelled_attributes, source_schemas


def test_a_utkface_cache_keeps_age_and_race_with_their_kinds(
    utkface_root: Path, cache: Path, tmp_path: Path
) -> None:
    out = tmp_path / "utk"
    prepare_cache(utkface_root, out, size=24, splits=("test",), progress=False)
    data = load_dataset(utkface_root)
    info = CacheInfo.read(out / INFO_FILE)
    assert info.attribute_schema() == data.schema
    kinds = {a.name: a.kind for a in info.attribute_schema().attributes}
    assert kinds == {"Male": "binary", "age": "numeric", "race": "categorical"}
    packed = PackedCache(out)
    rows = [int(np.flatnonzero(data.image_ids == i)[0]) for i in packed.image_ids]
    np.testing.assert_array_equal(packed.labels, data.labels[rows])
    assert packed.labels[:, data.schema.index("age")].max() > 1  # ages in years, not 0/1
    config = DataConfig(root=str(utkface_root), cache=str(out), cache_size=24)
    assert labelled_attributes(config, source_schemas(config)) == data.schema

"""CelebA-HQ on the real sample: CelebA's partition and labels through the mapping file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.data.loaders import load_dataset
from faceattr.data.record import FaceDataset
from faceattr.data.schema import CELEBA_SCHEMA


def test_real_sample_gets_celebas_partition_and_labels(
    celebahq_root: Path, real_celeba: FaceDataset
) -> None:
    data = load_dataset(celebahq_root, annotation_dirs=[real_celeba.root])
    assert data.format == "celebahq" and data.image_set == "wild"
    assert len(data) == 30_000 and data.schema == CELEBA_SCHEMA
    assert int(data.present.sum()) == 600
    assert data.partition is not None and data.identity is not None
    assert real_celeba.partition is not None
    assert np.bincount(data.partition).tolist() == [24_183, 2_993, 2_824]
    assert (data.identity >= 0).all()
    mapping = pd.read_csv(celebahq_root / "CelebA-HQ-to-CelebA-mapping.txt", sep=r"\s+")
    celeba_row = pd.Index(real_celeba.image_ids).get_indexer(mapping["orig_file"])
    hq_row = pd.Index(data.image_ids).get_indexer([f"{k}.jpg" for k in mapping["idx"]])
    for k in (0, 1, 12_345, 29_999):  # a few by hand
        assert np.array_equal(data.labels[hq_row[k]], real_celeba.labels[celeba_row[k]])
        assert data.partition[hq_row[k]] == real_celeba.partition[celeba_row[k]]
    assert np.array_equal(data.labels[hq_row], real_celeba.labels[celeba_row])  # all of them

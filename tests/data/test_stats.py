"""Dataset statistics: real frequencies and splits, correlation against numpy, the written files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceattr.attributes import ATTRIBUTES
from faceattr.data.record import FaceDataset
from faceattr.data.stats import (
    correlation_matrix,
    dataset_stats,
    imbalance_ratio,
    positive_frequency,
    split_counts,
    write_stats,
)


def test_real_frequencies_and_splits(real_celeba: FaceDataset) -> None:
    frequency = positive_frequency(real_celeba.labels)
    assert round(100 * frequency[ATTRIBUTES.index("Male")], 2) == 41.68
    assert split_counts(real_celeba.partition) == {"train": 162_770, "val": 19_867, "test": 19_962}


def test_real_correlation_matches_numpy(real_celeba: FaceDataset) -> None:
    ours = correlation_matrix(real_celeba.labels)
    np.testing.assert_allclose(ours, np.corrcoef(real_celeba.labels.T), atol=1e-10)
    np.testing.assert_array_equal(ours, ours.T)
    np.testing.assert_array_equal(np.diag(ours), np.ones(len(ATTRIBUTES)))
    male, lipstick = ATTRIBUTES.index("Male"), ATTRIBUTES.index("Wearing_Lipstick")
    assert ours[male, lipstick] < -0.7


def test_constant_column_has_undefined_correlation() -> None:
    labels = np.array([[1, 0, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=np.uint8)
    ours = correlation_matrix(labels)
    assert np.isnan(ours[0]).all() and np.isnan(ours[:, 0]).all()
    np.testing.assert_allclose(ours[1:, 1:], np.corrcoef(labels[:, 1:].T), atol=1e-12)


def test_imbalance_ratio() -> None:
    labels = np.array([[1, 0, 1], [0, 0, 1], [0, 0, 1], [0, 0, 0]], dtype=np.uint8)
    np.testing.assert_allclose(imbalance_ratio(labels), [3.0, np.inf, 3.0])


def test_unknown_partition_code_is_refused() -> None:
    with pytest.raises(ValueError, match="partition code 5 at row 2"):
        split_counts(np.array([0, 1, 5, 2], dtype=np.int8))


def test_without_partition_there_are_no_splits_or_baselines() -> None:
    labels = np.random.default_rng(0).integers(0, 2, (20, 3), dtype=np.uint8)
    stats = dataset_stats(labels, None, ["a", "b", "c"])
    assert stats.split_counts == {} and stats.baselines == {}
    assert stats.count == 20


def test_write_stats_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    labels = (rng.random((200, len(ATTRIBUTES))) < np.linspace(0.02, 0.9, 40)).astype(np.uint8)
    labels[:, 4] = 0  # an attribute nobody has: imbalance inf, written as null
    partition = np.repeat(np.array([0, 1, 2, -1], dtype=np.int8), [120, 40, 30, 10])
    paths = write_stats(dataset_stats(labels, partition, ATTRIBUTES), tmp_path / "out")
    assert {p.name for p in paths.values()} == {
        "frequencies.png",
        "correlation.png",
        "correlation.csv",
        "baselines.csv",
        "stats.json",
    }
    for kind in ("frequencies", "correlation"):
        with Image.open(paths[kind]) as image:
            assert image.format == "PNG" and min(image.size) >= 700
    document = json.loads(paths["stats_json"].read_text())
    assert document["split_counts"] == {"train": 120, "val": 40, "test": 30}
    assert document["imbalance"][ATTRIBUTES[4]] is None
    assert document["frequency"][ATTRIBUTES[0]] == pytest.approx(labels[:, 0].mean())
    assert document["baselines"]["test"]["count"] == 30
    with paths["correlation_csv"].open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["attribute", *ATTRIBUTES] and len(rows) == 41
    with paths["baselines_csv"].open() as handle:
        records = list(csv.DictReader(handle))
    assert len(records) == 80 and {r["split"] for r in records} == {"val", "test"}

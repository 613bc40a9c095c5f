"""FaceImageDataset: real images through DataLoader workers, ids, unreadable images skipped."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from faceattr.data.dataset import FaceImageDataset, collate_skip_none, select_rows
from faceattr.data.loaders import load_dataset
from faceattr.data.record import FaceDataset


def test_real_images_through_dataloader_workers(real_celeba: FaceDataset) -> None:
    rows = real_celeba.split_indices("test")[:8]
    dataset = FaceImageDataset(real_celeba, rows, attributes=["Male", "Smiling"])
    loader = DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=collate_skip_none)
    batches = list(loader)
    assert len(batches) == 2
    batch = batches[0]
    assert batch["image"].shape == (4, 3, 218, 178) and batch["image"].dtype == torch.uint8
    assert batch["labels"].dtype == torch.float32
    assert batch["skipped"] == 0
    index = torch.cat([b["index"] for b in batches]).numpy()
    assert np.array_equal(index, rows)
    labels = torch.cat([b["labels"] for b in batches]).numpy()
    assert np.array_equal(labels, real_celeba.labels[rows][:, [20, 31]])  # Male, Smiling
    assert batch["image_id"] == [str(real_celeba.image_ids[r]) for r in rows[:4]]
    assert "landmarks" not in batch  # the sample has no landmark file
    assert batch["image"].float().std() > 10  # real photos, not blank tensors


def test_split_names_ids_and_rows_select_the_same_images(fake_celeba: Path) -> None:
    data = load_dataset(fake_celeba)
    by_name = select_rows(data, "val")
    by_ids = select_rows(data, ["000007.jpg", "000008.jpg", "000009.jpg"])
    by_rows = select_rows(data, np.array([6, 7, 8]))
    assert by_name.tolist() == by_ids.tolist() == by_rows.tolist() == [6, 7, 8]
    assert select_rows(data, ["val", "test"]).tolist() == list(range(6, 12))
    with pytest.raises(KeyError, match="123.jpg"):
        select_rows(data, ["000001.jpg", "123.jpg"])
    with pytest.raises(IndexError):
        select_rows(data, [12])


def test_item_carries_landmarks_box_and_transform(fake_celeba: Path) -> None:
    data = load_dataset(fake_celeba, image_set="wild")
    dataset = FaceImageDataset(data, "test", transform=lambda image: image[:, :100, :100])
    item = dataset[0]
    assert item is not None
    assert item["image"].shape == (3, 100, 100)
    assert item["index"] == 9 and item["image_id"] == "000010.jpg"
    assert item["labels"].shape == (40,)
    assert data.landmarks is not None and data.boxes is not None
    assert torch.equal(item["landmarks"], torch.from_numpy(data.landmarks[9]))
    assert torch.equal(item["box"], torch.from_numpy(data.boxes[9]))
    with pytest.raises(KeyError, match="Smilling"):
        FaceImageDataset(data, "test", attributes=["Smilling"])


def test_corrupt_image_is_skipped_and_counted(
    fake_celeba: Path, caplog: pytest.LogCaptureFixture
) -> None:
    image = fake_celeba / "img_align_celeba" / "000003.jpg"
    image.write_bytes(image.read_bytes()[:300])  # an interrupted download: a truncated JPEG
    dataset = FaceImageDataset(load_dataset(fake_celeba), "train")
    with caplog.at_level(logging.WARNING, logger="faceattr.data.dataset"):
        assert dataset[2] is None
    assert "000003.jpg" in caplog.text
    loader = DataLoader(dataset, batch_size=4, collate_fn=collate_skip_none)
    batches = list(loader)
    assert sum(b["skipped"] for b in batches) == 1
    assert sum(len(b["image_id"]) for b in batches) == 5
    assert "000003.jpg" not in [i for b in batches for i in b["image_id"]]
    assert collate_skip_none([None, None]) is None

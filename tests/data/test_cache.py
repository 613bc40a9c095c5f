"""The packed image cache: byte-identical re-runs, resuming, corrupt images, exact geometry."""

from __future__ import annotations

import filecmp
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from typer.testing import CliRunner

from faceattr.attributes import ATTRIBUTES
from faceattr.cli import app
from faceattr.data import cache_writer
from faceattr.data.cache import (
    CROP_SOURCES,
    SKIPPED,
    WRITTEN,
    CacheBatchDataset,
    CacheBatchSampler,
    PackedCache,
)
from faceattr.data.cache_prepare import box_corners, loose_crop_matrices, prepare_cache
from faceattr.data.cache_writer import read_rgb, warp_to_uint8
from faceattr.data.formats import (
    AttributeTable,
    IdentityTable,
    PartitionTable,
    write_attributes,
    write_identities,
    write_partition,
)
from faceattr.data.loaders import load_dataset
from faceattr.data.record import FaceDataset
from faceattr.geometry import (
    affact_alignment_matrix,
    affact_box,
    compose,
    transform_points,
    warp_affine,
)

SIZE = 64


def assert_same_folders(a: Path, b: Path) -> None:
    """Same file names and byte-identical contents."""
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert mismatch == [] and errors == []


def test_prepare_twice_is_byte_identical_whatever_the_workers(
    fake_celeba: Path, tmp_path: Path
) -> None:
    first = prepare_cache(fake_celeba, tmp_path / "a", size=SIZE, chunk_size=5, progress=False)
    prepare_cache(fake_celeba, tmp_path / "b", size=SIZE, workers=2, chunk_size=3, progress=False)
    assert first.count == first.written == 12
    assert first.crop_sources == {"landmarks": 12, "box": 0, "whole_image": 0}
    assert_same_folders(tmp_path / "a", tmp_path / "b")


def test_an_interrupted_run_resumes_to_the_same_bytes(
    fake_celeba: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepare_cache(fake_celeba, tmp_path / "whole", size=SIZE, chunk_size=4, progress=False)
    render_chunk = cache_writer.render_chunk
    calls = []

    def interrupted(*args: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return render_chunk(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(cache_writer, "render_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_cache(fake_celeba, tmp_path / "resumed", size=SIZE, chunk_size=4, progress=False)
    monkeypatch.undo()
    assert (np.load(tmp_path / "resumed" / "status.npy") == WRITTEN).sum() == 4
    with pytest.raises(ValueError, match="incomplete"):
        PackedCache(tmp_path / "resumed")

    resumed = prepare_cache(fake_celeba, tmp_path / "resumed", size=SIZE, progress=False)
    assert (resumed.already_done, resumed.written) == (4, 8)
    assert_same_folders(tmp_path / "whole", tmp_path / "resumed")
    again = prepare_cache(fake_celeba, tmp_path / "resumed", size=SIZE, progress=False)
    assert (again.already_done, again.written) == (12, 0)
    assert_same_folders(tmp_path / "whole", tmp_path / "resumed")


def test_a_cache_of_other_arguments_is_refused(fake_celeba: Path, tmp_path: Path) -> None:
    prepare_cache(fake_celeba, tmp_path / "c", size=32, splits=["val"], progress=False)
    with pytest.raises(ValueError, match="size: 32 -> 48"):
        prepare_cache(fake_celeba, tmp_path / "c", size=48, splits=["val"], progress=False)


def test_corrupt_images_are_skipped_and_listed(fake_celeba: Path, tmp_path: Path) -> None:
    images = fake_celeba / "img_align_celeba"
    truncated = (images / "000002.jpg").read_bytes()
    (images / "000002.jpg").write_bytes(truncated[: len(truncated) // 3])
    (images / "000005.jpg").write_text("not a jpeg")

    summary = prepare_cache(fake_celeba, tmp_path / "c", size=SIZE, progress=False)
    assert [image_id for image_id, _ in summary.skipped] == ["000002.jpg", "000005.jpg"]
    assert summary.written == 10 and summary.count == 12
    listed = (tmp_path / "c" / "skipped.tsv").read_text().splitlines()
    assert [line.split("\t")[:2] for line in listed] == [["1", "000002.jpg"], ["4", "000005.jpg"]]
    assert "truncated" in listed[0] and "cannot identify image file" in listed[1]
    cache = PackedCache(tmp_path / "c")
    assert cache.info.skipped == 2
    assert (cache.status[[1, 4]] == SKIPPED).all()
    assert 1 not in cache.split_indices() and 4 not in cache.split_indices()
    assert len(cache.split_indices()) == 10


def test_cache_landmarks_are_the_source_landmarks_mapped_exactly(
    fake_celeba: Path, tmp_path: Path
) -> None:
    prepare_cache(fake_celeba, tmp_path / "c", size=SIZE, margin=1.5, progress=False)
    cache = PackedCache(tmp_path / "c")
    source = load_dataset(fake_celeba)
    rows = [int(np.flatnonzero(source.image_ids == i)[0]) for i in cache.image_ids]
    assert source.landmarks is not None and source.boxes is not None
    expected = transform_points(cache.matrices, source.landmarks[rows].astype(np.float64))
    np.testing.assert_allclose(cache.landmarks, expected, atol=1e-4)
    corners = transform_points(cache.matrices, box_corners(source.boxes[rows].astype(np.float64)))
    np.testing.assert_allclose(cache.boxes, corners, atol=1e-4)
    # upright AFFACT box at 1/1.5 of the crop: eyes level, the box centre mid-crop
    eyes = cache.landmarks[:, :2]
    np.testing.assert_allclose(eyes[:, 0, 1], eyes[:, 1, 1], atol=1e-3)
    box = affact_box(source.landmarks[rows])
    centre = transform_points(cache.matrices, box.center[:, None, :])[:, 0]
    np.testing.assert_allclose(centre, (SIZE - 1) / 2.0, atol=1e-6)
    side = box.size[:, 0] * np.hypot(*cache.matrices[:, :, 0].T)
    np.testing.assert_allclose(side, SIZE / 1.5, rtol=1e-9)
    np.testing.assert_array_equal(cache.labels, source.labels[rows])
    np.testing.assert_array_equal(cache.partition, source.partition[rows])  # type: ignore[index]
    # one matrix aligns every crop: cache -> aligned equals the AFFACT alignment in cache space
    aligned = cache.alignment_matrices(len(cache), 80).numpy()
    np.testing.assert_allclose(aligned, affact_alignment_matrix(cache.landmarks, 80), atol=1e-4)
    np.testing.assert_allclose(
        compose(aligned, cache.matrices),
        affact_alignment_matrix(source.landmarks[rows], 80),
        atol=1e-9,
    )


def test_a_batch_equals_a_fresh_decode_and_warp(fake_celeba: Path, tmp_path: Path) -> None:
    prepare_cache(fake_celeba, tmp_path / "c", size=SIZE, progress=False)
    cache = PackedCache(tmp_path / "c")
    source = load_dataset(fake_celeba)
    rows = cache.split_indices("train")
    batch = cache.get_batch(rows)
    assert batch.images.shape == (len(rows), 3, SIZE, SIZE) and batch.images.dtype == torch.uint8
    for k, row in enumerate(rows):
        i = int(np.flatnonzero(source.image_ids == cache.image_ids[row])[0])
        decoded = torch.from_numpy(read_rgb(source.image_path(i)).copy()).permute(2, 0, 1)[None]
        fresh = warp_affine(decoded, batch.matrices[k : k + 1], SIZE, dtype=torch.uint8)[0]
        difference = (fresh.int() - batch.images[k].int()).abs()
        # OpenCV 4 interpolates at 1/32 px in fixed point (OpenCV 5 in float): a few grey levels
        # at the sharpest edges, a hundredth of a level on average.
        assert difference.max() <= 4 and difference.float().mean() < 0.05
        np.testing.assert_array_equal(batch.labels[k].numpy(), source.labels[i])
    np.testing.assert_array_equal(batch.indices.numpy(), rows)


def test_loose_crop_falls_back_to_the_box_then_the_whole_image() -> None:
    nan_points = np.full((5, 2), np.nan)
    landmarks = np.stack([nan_points, nan_points])
    boxes = np.array([[40.0, 70.0, 100.0, 120.0], [np.nan] * 4])
    sizes = np.array([[178, 218], [300, 200]])
    matrices, sources = loose_crop_matrices(landmarks, boxes, sizes, 100, margin=1.25)
    assert [CROP_SOURCES[s] for s in sources] == ["box", "whole_image"]
    # the box x2 x1.25 fits the crop: its taller side spans 100 px, its centre is mid-crop
    centre = transform_points(matrices[:1], np.array([[[90.0, 130.0]]]))[0, 0]
    np.testing.assert_allclose(centre, [49.5, 49.5])
    np.testing.assert_allclose(matrices[0, 1, 1] * 120 * 2 * 1.25, 100)
    # the whole 300x200 image fits: its pixel edges land on the crop's left and right edges
    edges = transform_points(matrices[1:], np.array([[[-0.5, 99.5], [299.5, 99.5]]]))[0]
    np.testing.assert_allclose(edges, [[-0.5, 49.5], [99.5, 49.5]])


def test_the_opencv_warp_matches_the_geometry_warp() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)
    angle, scale = 0.3, 1.7
    matrix = np.array(
        [
            [
                [scale * np.cos(angle), scale * np.sin(angle), -5.0],
                [-scale * np.sin(angle), scale * np.cos(angle), 20.0],
            ]
        ]
    )
    mine = warp_to_uint8(image, matrix, 72)[0]
    reference = (
        warp_affine(torch.from_numpy(image).permute(2, 0, 1)[None], matrix, 72, dtype=torch.uint8)[
            0
        ]
        .permute(1, 2, 0)
        .numpy()
    )
    difference = np.abs(mine.astype(int) - reference.astype(int))
    # uniform noise is the worst case for OpenCV 4's 1/32 px fixed-point bilinear weights: up to
    # 255/32 levels where neighbours differ most (OpenCV 5 interpolates in float: within 1)
    assert difference.max() <= 8 and difference.mean() < 1.0


def test_the_sampler_is_seeded_sorted_and_complete() -> None:
    indices = np.arange(3, 40)
    sampler = CacheBatchSampler(indices, batch_size=8, seed=1)
    first = list(sampler)
    assert len(first) == len(sampler) == 5
    assert all(batch == sorted(batch) for batch in first)
    assert sorted(r for batch in first for r in batch) == indices.tolist()
    assert list(CacheBatchSampler(indices, batch_size=8, seed=1)) == first
    sampler.set_epoch(1)
    assert list(sampler) != first
    assert len(CacheBatchSampler(indices, batch_size=8, drop_last=True)) == 4


def test_a_dataloader_draws_whole_batches(fake_celeba: Path, tmp_path: Path) -> None:
    prepare_cache(fake_celeba, tmp_path / "c", size=SIZE, progress=False)
    cache = PackedCache(tmp_path / "c")
    sampler = CacheBatchSampler(cache.split_indices("train"), batch_size=4, seed=0)
    loader = DataLoader(CacheBatchDataset(cache), sampler=sampler, batch_size=None)
    batches = list(loader)
    assert [len(b) for b in batches] == [4, 2]
    rows = batches[0].indices.tolist()
    assert torch.equal(batches[0].images, cache.get_batch(rows).images)
    assert batches[0].landmarks.shape == (4, 5, 2) and batches[0].labels.shape == (4, 40)
    # a worker process receives the cache without a copy of its pixels, and maps them itself
    _ = cache.images
    assert len(pickle.dumps(cache)) < 20_000
    assert torch.equal(pickle.loads(pickle.dumps(cache)).get_batch(rows).images, batches[0].images)


def write_real_subset(real: FaceDataset, root: Path, count: int) -> list[str]:
    """A CelebA folder of ``count`` real test images (linked) and their real annotations."""
    rows = real.split_indices("test")[:count]
    ids = real.image_ids[rows]
    assert real.partition is not None and real.identity is not None
    root.mkdir()
    write_attributes(
        root / "list_attr_celeba.txt", AttributeTable(ids, ATTRIBUTES, real.labels[rows])
    )
    write_partition(root / "list_eval_partition.txt", PartitionTable(ids, real.partition[rows]))
    write_identities(root / "identity_CelebA.txt", IdentityTable(ids, real.identity[rows]))
    (root / "img_align_celeba").mkdir()
    for i in rows:
        (root / "img_align_celeba" / str(real.image_ids[i])).symlink_to(real.image_path(int(i)))
    return ids.tolist()


def test_prepare_real_images(
    real_celeba: FaceDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEATTR_CACHE", str(tmp_path / "annotation-cache"))
    ids = write_real_subset(real_celeba, tmp_path / "celeba", 20)
    summary = prepare_cache(tmp_path / "celeba", tmp_path / "c", size=SIZE, progress=False)
    # no landmark or box file in the sample: every crop is the whole image, and says so
    assert summary.crop_sources == {"landmarks": 0, "box": 0, "whole_image": 20}
    cache = PackedCache(tmp_path / "c")
    assert cache.image_ids.tolist() == ids
    rows = [int(np.flatnonzero(real_celeba.image_ids == i)[0]) for i in ids]
    np.testing.assert_array_equal(cache.labels, real_celeba.labels[rows])
    assert (cache.partition == 2).all() and np.isnan(cache.landmarks).all()
    decoded = read_rgb(real_celeba.image_path(rows[0]))
    assert decoded.shape == (218, 178, 3)
    fresh = warp_to_uint8(decoded, cache.matrices[:1], SIZE)[0]
    np.testing.assert_array_equal(cache.get_batch([0]).images[0].permute(1, 2, 0).numpy(), fresh)
    assert cache.images[0, :, 5:58].std() > 10  # a real photo, not an empty row


def test_the_prepare_command(fake_celeba: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    arguments = [
        "data",
        "prepare",
        str(fake_celeba),
        "--out",
        str(tmp_path / "c"),
        "--workers",
        "0",
    ]
    result = runner.invoke(app, [*arguments, "--size", "32", "--split", "train,val"])
    assert result.exit_code == 0, result.output
    assert "(9 images, 32x32, margin 1.25)" in result.output
    assert "crops from: landmarks 9, box 0, whole_image 0" in result.output
    assert len(PackedCache(tmp_path / "c").split_indices("val")) == 3
    refused = runner.invoke(app, [*arguments, "--size", "48", "--split", "train,val"])
    assert refused.exit_code == 2 and "other arguments" in refused.output

"""The synthetic CelebA generator: label statistics, determinism, format, geometry, learnability."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from faceattr.attributes import ATTRIBUTE_INDEX, ATTRIBUTES, attribute_indices
from faceattr.data.formats import (
    read_attributes,
    read_boxes,
    read_identities,
    read_landmarks,
    read_partition,
)
from faceattr.data.loaders import check_dataset
from faceattr.data.synth import (
    ALIGNED_BOX_FILE,
    IDENTITY_ATTRIBUTES,
    MEAN_LANDMARKS,
    MINORITY_FLIP_RATE,
    RENDERED_ATTRIBUTES,
    TRUTH_FILE,
    LabelModel,
    add_label_noise,
    compute_label_stats,
    generate_dataset,
    load_label_stats,
    plan_dataset,
    render_array,
    resolve_labels,
    sample_identity_labels,
    sample_labels,
)

COUNT, SEED = 30, 3


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset drawn by two worker processes."""
    root = tmp_path_factory.mktemp("synth2")
    generate_dataset(root, COUNT, seed=SEED, workers=2, progress=False)
    return root


def _phi(labels: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(np.corrcoef(labels.T.astype(np.float64)))


def test_shipped_stats_equal_a_recompute_from_the_real_file(celeba_root: Path) -> None:
    real = compute_label_stats(read_attributes(celeba_root / "list_attr_celeba.txt"))
    shipped = load_label_stats()
    assert shipped.names == real.names == ATTRIBUTES
    assert shipped.count == real.count == 202_599
    assert shipped.frequency[ATTRIBUTE_INDEX["Male"]] == pytest.approx(0.4168, abs=5e-5)
    np.testing.assert_allclose(shipped.frequency, real.frequency, atol=1e-6)
    np.testing.assert_allclose(shipped.phi, real.phi, atol=1e-6)
    np.testing.assert_allclose(shipped.tetrachoric, real.tetrachoric, atol=1e-6)


def test_drawn_labels_follow_celeba_frequencies_and_correlations() -> None:
    stats = load_label_stats()
    labels = resolve_labels(sample_labels(20_000, np.random.default_rng(0)))
    assert labels.shape == (20_000, 40) and labels.dtype == np.uint8
    assert np.abs(labels.mean(axis=0) - stats.frequency).max() < 0.012
    phi = _phi(labels)
    error = np.abs(phi - stats.phi)[np.triu_indices(40, 1)]
    assert error.mean() < 0.02
    assert error.max() < 0.2  # a Gaussian copula only approximates the rarest pairs
    for a, b in [("Male", "Wearing_Lipstick"), ("Smiling", "High_Cheekbones"), ("Male", "Goatee")]:
        i, j = attribute_indices([a, b])
        assert abs(phi[i, j] - stats.phi[i, j]) < 0.05, (a, b)
    hair = labels[:, attribute_indices(["Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"])]
    assert hair.sum(axis=1).max() == 1  # exclusive once drawn, yet each at its CelebA rate


def test_identity_attributes_are_shared_and_the_rest_vary() -> None:
    sizes = np.full(300, 10)
    labels = sample_identity_labels(sizes, np.random.default_rng(1)).reshape(300, 10, 40)
    fixed = attribute_indices(IDENTITY_ATTRIBUTES)
    assert (labels[:, :, fixed] == labels[:, :1, fixed]).all()
    smiling = labels[:, :, ATTRIBUTE_INDEX["Smiling"]]
    assert 0.3 < (smiling.min(axis=1) != smiling.max(axis=1)).mean() < 1.0
    assert abs(smiling.mean() - load_label_stats().frequency[ATTRIBUTE_INDEX["Smiling"]]) < 0.05


def test_label_noise_keeps_frequencies_at_the_documented_rate() -> None:
    frequency = load_label_stats().frequency
    clean = sample_labels(50_000, np.random.default_rng(2))
    noisy = add_label_noise(clean, frequency, np.random.default_rng(3))
    expected = 2 * MINORITY_FLIP_RATE * np.minimum(frequency, 1 - frequency).mean()
    assert (noisy != clean).mean() == pytest.approx(expected, abs=0.002)
    assert 0.02 < expected < 0.05  # "a few percent", as in CelebA's own labels
    assert np.abs(noisy.mean(axis=0) - clean.mean(axis=0)).max() < 0.006


def test_resolve_labels_makes_contradictions_drawable() -> None:
    labels = np.zeros((4, 40), dtype=np.uint8)
    on = {
        0: ["Bald", "Bangs", "Black_Hair", "Brown_Hair", "Male"],
        1: ["Mustache", "Goatee", "Sideburns"],  # a woman
        2: ["Male", "Goatee", "No_Beard"],
        3: ["Male", "Bald", "Wearing_Hat", "Receding_Hairline"],
    }
    for row, names in on.items():
        labels[row, attribute_indices(names)] = 1
    out = resolve_labels(labels)
    has = [{ATTRIBUTES[k] for k in np.flatnonzero(r)} for r in out]
    assert has[0] == {"Bald", "Black_Hair", "Male"}
    assert has[1] == {"No_Beard"}
    assert has[2] == {"Male", "Goatee"}
    assert has[3] == {"Male", "Wearing_Hat"}
    assert np.array_equal(resolve_labels(out), out)


def test_plan_has_identities_and_an_identity_disjoint_80_10_10_partition() -> None:
    plan = plan_dataset(3000, seed=5)
    assert plan.image_ids[0] == "000001.jpg" and plan.image_ids[-1] == "003000.jpg"
    assert np.all(np.diff(plan.partition) >= 0)  # train ids first, then val, then test
    splits_per_identity = {i: set(plan.partition[plan.identity == i]) for i in set(plan.identity)}
    assert all(len(s) == 1 for s in splits_per_identity.values())
    sizes = np.bincount(plan.identity)[1:]
    assert np.median(sizes) >= 10 and sizes.max() <= 20 and (sizes >= 5).mean() > 0.99
    fractions = np.bincount(plan.partition, minlength=3) / 3000
    np.testing.assert_allclose(fractions, [0.8, 0.1, 0.1], atol=0.03)
    assert np.array_equal(plan.truth, resolve_labels(plan.truth))
    fixed = attribute_indices(["Male", "Young", "Pale_Skin"])
    for i in list(splits_per_identity)[:50]:
        rows = plan.truth[plan.identity == i][:, fixed]
        assert (rows == rows[0]).all()
        assert len({id(t) for t, n in zip(plan.traits, plan.identity, strict=True) if n == i}) == 1


def test_small_plans_still_have_all_three_splits() -> None:
    for count in (40, 60):
        assert (np.bincount(plan_dataset(count, seed=1).partition, minlength=3) > 0).all()


def test_cli_writes_a_valid_folder_and_refuses_a_non_empty_one(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from faceattr.cli import app

    out = tmp_path / "synth"
    args = ["data", "synth", str(out), "--count", "8", "--seed", "1", "--workers", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 8 aligned + wild images" in result.output
    assert check_dataset(out).ok
    with pytest.raises(FileExistsError, match="not empty"):
        generate_dataset(out, 8, progress=False)


def test_generation_is_identical_for_any_worker_count(synth_root: Path, tmp_path: Path) -> None:
    generate_dataset(tmp_path, COUNT, seed=SEED, workers=1, progress=False)
    files = sorted(p.relative_to(synth_root) for p in synth_root.rglob("*") if p.is_file())
    assert len(files) == 2 * COUNT + 8
    for name in files:
        assert (synth_root / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_output_passes_check_and_reads_back_the_planned_labels(synth_root: Path) -> None:
    for image_set in ("align", "wild"):
        report = check_dataset(synth_root, image_set=image_set)
        assert report.ok, report.format_text()
        assert report.present == COUNT and report.missing == 0 and report.identity_disjoint
    plan = plan_dataset(COUNT, seed=SEED)
    attributes = read_attributes(synth_root / "list_attr_celeba.txt")
    assert attributes.names == ATTRIBUTES
    assert np.array_equal(attributes.image_ids, plan.image_ids)
    assert np.array_equal(attributes.labels, plan.labels)
    assert np.array_equal(read_attributes(synth_root / TRUTH_FILE).labels, plan.truth)
    assert np.array_equal(
        read_partition(synth_root / "list_eval_partition.txt").partition, plan.partition
    )
    assert np.array_equal(
        read_identities(synth_root / "identity_CelebA.txt").identity, plan.identity
    )


def _similarity_residual(src: np.ndarray, dst: np.ndarray) -> float:
    """Largest distance left after the least-squares similarity transform src -> dst."""
    a = np.column_stack([src[:, 0], -src[:, 1], np.ones(5), np.zeros(5)])
    b = np.column_stack([src[:, 1], src[:, 0], np.zeros(5), np.ones(5)])
    design = np.vstack([a, b])
    params, *_ = np.linalg.lstsq(design, np.concatenate([dst[:, 0], dst[:, 1]]), rcond=None)
    fitted = design @ params
    return float(np.hypot(*(fitted - np.concatenate([dst[:, 0], dst[:, 1]])).reshape(2, 5)).max())


def test_landmarks_and_boxes_describe_the_faces(synth_root: Path) -> None:
    aligned = read_landmarks(synth_root / "list_landmarks_align_celeba.txt").landmarks
    wild = read_landmarks(synth_root / "list_landmarks_celeba.txt").landmarks
    boxes = read_boxes(synth_root / "list_bbox_celeba.txt").boxes
    aligned_boxes = read_boxes(synth_root / ALIGNED_BOX_FILE).boxes
    assert np.abs(aligned.mean(axis=0) - MEAN_LANDMARKS).max() < 2.5
    assert 0.3 < np.abs(aligned - MEAN_LANDMARKS).mean() < 4.0  # small per-image variation
    for i, image_id in enumerate(read_boxes(synth_root / "list_bbox_celeba.txt").image_ids):
        assert Image.open(synth_root / "img_align_celeba" / image_id).size == (178, 218)
        width, height = Image.open(synth_root / "img_celeba" / image_id).size
        assert 300 <= width <= 500 and 300 <= height <= 500
        assert _similarity_residual(aligned[i], wild[i]) < 1.5
        for box, points, size in (
            (boxes[i], wild[i], (width, height)),
            (aligned_boxes[i], aligned[i], (178, 218)),
        ):
            x, y, w, h = box
            assert x >= 0 and y >= 0 and x + w <= size[0] and y + h <= size[1]
            assert (points[:, 0] > x).all() and (points[:, 0] < x + w).all()
            assert (points[:, 1] > y).all() and (points[:, 1] < y + h).all()


def _ridge_predictions(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """Ridge regression on pixels and squared pixels (dual form), thresholded at 0.5."""

    def features(x: np.ndarray) -> np.ndarray:
        f = x.reshape(len(x), -1).astype(np.float32) / 255.0
        return np.hstack([f, f * f])

    f_train, f_test = features(x_train), features(x_test)
    mean = f_train.mean(axis=0)
    f_train -= mean
    f_test -= mean
    y_mean = y_train.mean(axis=0)
    gram = f_train @ f_train.T + 30.0 * np.eye(len(f_train), dtype=np.float32)
    weights = f_train.T @ np.linalg.solve(gram, (y_train - y_mean).astype(np.float32))
    return (f_test @ weights + y_mean > 0.5).astype(np.uint8)


@pytest.mark.slow
def test_every_rendered_attribute_is_learnable_from_pixels() -> None:
    """A ridge classifier on 44x54 pixels, fitted in seconds to 1,200 faces with noisy labels,
    beats the majority class on 500 new faces (their drawn labels) for every rendered attribute.

    Labels come from CelebA's copula with frequencies moved into [0.3, 0.7], so that rare
    attributes (Bald, 2%) have enough examples and the majority baseline is not nearly perfect.
    """
    stats = load_label_stats()
    balanced = dataclasses.replace(stats, frequency=np.clip(stats.frequency, 0.3, 0.7))
    model = LabelModel.from_stats(balanced)
    truth = resolve_labels(sample_labels(1700, np.random.default_rng(4), model))
    noisy = add_label_noise(truth, model.frequency, np.random.default_rng(5))
    pixels = render_array(truth, seed=6, size=(44, 54), workers=2)
    columns = attribute_indices(RENDERED_ATTRIBUTES)
    train, test = slice(0, 1200), slice(1200, None)
    predicted = _ridge_predictions(pixels[train], noisy[train][:, columns], pixels[test])
    expected = truth[test][:, columns]
    accuracy = (predicted == expected).mean(axis=0)
    majority = np.maximum(expected.mean(axis=0), 1 - expected.mean(axis=0))
    report = {
        n: (round(float(a), 3), round(float(m), 3))
        for n, a, m in zip(RENDERED_ATTRIBUTES, accuracy, majority, strict=True)
    }
    assert (accuracy > majority).all(), report

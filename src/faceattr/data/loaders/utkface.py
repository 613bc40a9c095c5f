"""UTKFace (``utkface``): ``UTKFace/<age>_<gender>_<race>_<datetime>.jpg.chip.jpg`` (or the files
directly in the root), the labels in the file names: age 0-116, gender 0 male / 1 female, race
0 White, 1 Black, 2 Asian, 3 Indian, 4 Others. The aligned crops are 200x200.

A name that does not parse, or holds a value out of range, is listed in the report's skipped
files and left out (UTKFace has a few). No identities are given: the partition is random,
seeded and saved.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.data.check import image_names
from faceattr.data.loaders import register_loader
from faceattr.data.loaders.common import (
    Collector,
    LoadOptions,
    detected_geometry,
    generated_partition,
)
from faceattr.data.record import FaceDataset
from faceattr.data.schema import Attribute, Schema

IMAGE_DIR = "UTKFace"
NAME_PATTERN = re.compile(r"^(\d{1,3})_(\d)_(\d)_\d+\.jpg\.chip\.jpg$")
IMAGE_SIZE = (200, 200)  # width, height of every aligned crop
MAX_AGE = 116
RACES = ("White", "Black", "Asian", "Indian", "Others")
UTKFACE_SCHEMA = Schema(
    (
        Attribute("Male"),
        Attribute("age", "numeric", low=0, high=MAX_AGE, unit="years"),
        Attribute("race", "categorical", classes=RACES),
    )
)
"""``Male`` (gender 0), ``age`` in years and ``race`` (the class index), in that column order."""
SHARES = (0.7, 0.1, 0.2)


def find_image_dir(root: Path) -> Path:
    """``UTKFace/`` in root, else root itself."""
    return root / IMAGE_DIR if (root / IMAGE_DIR).is_dir() else root


def parse_names(names: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The names that parse with values in range, their ``(N, 3)`` labels (Male, age, race
    index) and, for every other name, ``"<name> (<why>)"``."""
    parts = pd.Series(names, dtype=str).str.extract(NAME_PATTERN)
    parsed = parts.notna().all(axis=1).to_numpy()
    values = parts.fillna("-1").astype(np.int64).to_numpy()
    age, gender, race = values[:, 0], values[:, 1], values[:, 2]
    reasons = np.select(
        [~parsed, age > MAX_AGE, gender > 1, race >= len(RACES)],
        [
            "name does not parse",
            f"age over {MAX_AGE}",
            "gender not 0 or 1",
            f"race not 0-{len(RACES) - 1}",
        ],
        default="",
    )
    good = reasons == ""
    skipped = [f"{n} ({r})" for n, r in zip(names[~good], reasons[~good], strict=True)]
    labels = np.stack([gender[good] == 0, age[good], race[good]], axis=1).astype(np.float32)
    return names[good], labels, skipped


def _detect(root: Path) -> bool:
    if (root / IMAGE_DIR).is_dir():
        return True
    return any(NAME_PATTERN.match(name) for name in image_names(root).tolist())


@register_loader(
    "utkface", _detect, "UTKFace: UTKFace/<age>_<gender>_<race>_<datetime>.jpg.chip.jpg"
)
def read(root: Path, options: LoadOptions, collector: Collector) -> FaceDataset | None:
    """Read a UTKFace folder: labels from the file names, a generated random partition."""
    image_dir = find_image_dir(root)
    names = np.sort(image_names(image_dir))
    names = names[np.char.endswith(np.char.lower(names), ".jpg")]
    ids, labels, skipped = parse_names(names)
    collector.report.skipped += skipped
    if not len(ids):
        collector.error(f"{image_dir}: no UTKFace image names (<age>_<gender>_<race>_...jpg)")
        return None
    partition, source = generated_partition(root, "utkface", ids, None, SHARES, options.split_seed)
    landmarks, boxes = detected_geometry(collector, root, ids, options.annotation_dirs)
    return FaceDataset(
        format="utkface",
        root=root,
        image_dir=image_dir,
        image_ids=ids,
        schema=UTKFACE_SCHEMA,
        labels=labels,
        partition=partition,
        identity=None,
        landmarks=landmarks,
        boxes=boxes,
        present=np.ones(len(ids), dtype=bool),
        image_set="wild",
        sizes=np.tile(np.asarray(IMAGE_SIZE, np.int32), (len(ids), 1)),
        partition_source=source,
    )

"""``export_folder``: a synthetic CelebA folder rewritten as a user's folder (``folder`` format)
with a numeric and a categorical attribute beside CelebA's 40 binary ones.

- ``age`` (numeric, years): drawn per identity from what the renderer drew: faces drawn young (no
  wrinkles) are 20-30, the others 50-65, ten years more under grey hair.
- ``hair_colour`` (categorical): the drawn hair colour (black, blond, brown, gray; blank when none
  of them is drawn), as the renderer picks it (grey first).

The images move (or are copied) to ``photos/``; ``labels.csv`` holds the image path, identity,
split, the 40 annotated (noisy) binary labels, ``age`` and ``hair_colour``; ``schema.json``
declares the two; ``landmarks.txt`` and ``boxes.txt`` carry the aligned geometry under the
folder's image ids, as ``faceattr data landmarks`` would write them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from faceattr.data.formats import (
    BoxTable,
    LandmarkTable,
    read_attributes,
    write_boxes,
    write_landmarks,
)
from faceattr.data.loaders import load_dataset
from faceattr.data.loaders.folder import LABEL_FILE, SCHEMA_FILE
from faceattr.data.record import DETECTED_STEMS, SPLITS
from faceattr.data.schema import Attribute
from faceattr.data.synth.generate import TRUTH_FILE

PHOTOS = "photos"
HAIR_COLOURS = ("black", "blond", "brown", "gray")
"""The classes of ``hair_colour``."""
AGE = Attribute("age", "numeric", low=0, high=100, unit="years")
HAIR = Attribute("hair_colour", "categorical", classes=HAIR_COLOURS)


def synthetic_ages(
    young: np.ndarray, gray: np.ndarray, identity: np.ndarray, seed: int
) -> np.ndarray:
    """One age per identity (years, one decimal): 20-30 when drawn young, else 50-65 (+10 under
    grey hair); seeded by ``seed``."""
    people, first = np.unique(identity, return_index=True)
    u = np.random.default_rng(seed).random(len(people))
    per_person = np.where(young[first], 20 + 10 * u, 50 + 15 * u + 10 * gray[first])
    return np.round(per_person[np.searchsorted(people, identity)], 1)


def drawn_hair_colour(truth: pd.DataFrame) -> np.ndarray:
    """The hair colour the renderer drew (grey wins, then blond, black, brown; blank: none)."""
    colour = np.full(len(truth), "", dtype=object)
    for name in ("Brown", "Black", "Blond", "Gray"):  # the later, the stronger
        colour[truth[f"{name}_Hair"].to_numpy() == 1] = name.lower()
    return colour


def export_folder(celeba: str | Path, out: str | Path, seed: int = 0, move: bool = False) -> Path:
    """Write the synthetic CelebA folder ``celeba`` (``generate_dataset``'s output) as a
    ``folder``-format dataset at ``out`` (new or empty); ``move`` moves its aligned images
    instead of copying them. Returns ``out``."""
    source, root = Path(celeba), Path(out)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty: export to a new folder")
    data = load_dataset(source, format="celeba")
    table = read_attributes(source / TRUTH_FILE)
    truth = pd.DataFrame(table.labels, columns=list(table.names), index=table.image_ids)
    truth = truth.loc[data.image_ids]
    assert data.identity is not None and data.landmarks is not None and data.boxes is not None
    (root / PHOTOS).mkdir(parents=True, exist_ok=True)
    ids = np.array([f"{PHOTOS}/{i}" for i in data.image_ids])
    for k, image_id in enumerate(ids):
        (shutil.move if move else shutil.copyfile)(data.image_path(k), root / image_id)
    frame = pd.DataFrame({"image": ids, "identity": data.identity})
    assert data.partition is not None
    frame["split"] = [SPLITS[p] for p in data.partition]
    for k, name in enumerate(data.attribute_names):
        frame[name] = data.labels[:, k].astype(int)
    young, gray = truth["Young"].to_numpy() == 1, truth["Gray_Hair"].to_numpy() == 1
    frame[AGE.name] = synthetic_ages(young, gray, data.identity, seed)
    frame[HAIR.name] = drawn_hair_colour(truth)
    frame.to_csv(root / LABEL_FILE, index=False)
    (root / SCHEMA_FILE).write_text(json.dumps([AGE.to_json(), HAIR.to_json()], indent=2) + "\n")
    write_landmarks(root / f"{DETECTED_STEMS[0]}.txt", LandmarkTable(ids, data.landmarks))
    write_boxes(root / f"{DETECTED_STEMS[1]}.txt", BoxTable(ids, data.boxes))
    return root

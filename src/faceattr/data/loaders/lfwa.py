"""LFW with LFWA's labels (``lfwa``): ``lfw-deepfunneled/<Person>/<Person>_NNNN.jpg`` (or the
``lfw/`` or ``lfw_funneled/`` image folders) and ``lfw_att_40.mat``, a MATLAB file holding
``AttrName`` (the 40 names, CelebA's), ``label`` (N x 40, 0/1) and ``name`` (N paths
``Person\\Person_NNNN.jpg``).

The people (the folders) are the identities. LFWA ships no split: the partition is generated,
identity-disjoint and seeded, in the sizes papers use (6,263 train of which a tenth is val, 6,880
test). Images on disk without labels are not rows; a warning counts them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from scipy.io.matlab import MatReadError

from faceattr.data.check import examples
from faceattr.data.formats import AnnotationError
from faceattr.data.loaders import register_loader
from faceattr.data.loaders.common import (
    Collector,
    LoadOptions,
    detected_geometry,
    generated_partition,
    isin,
)
from faceattr.data.record import FaceDataset
from faceattr.data.schema import Schema, SchemaError

LABEL_FILE = "lfw_att_40.mat"
IMAGE_DIRS = ("lfw-deepfunneled", "lfw_funneled", "lfw")
IMAGE_SIZE = (250, 250)  # width, height of every LFW image
TRAIN, TEST = 6_263, 6_880  # LFWA's usual split of its 13,143 labelled images
VAL_OF_TRAIN = 0.1


@dataclass(frozen=True, eq=False)
class LfwaLabels:
    """LFWA's labels: image ids ``Person/Person_NNNN.jpg``, the schema, ``(N, K)`` 0/1 labels."""

    image_ids: np.ndarray
    schema: Schema
    labels: np.ndarray


def _variable(mat: dict[str, object], path: Path, name: str) -> np.ndarray:
    if name not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__")) or "none"
        raise AnnotationError(path, None, f"no variable {name!r} (variables: {found})")
    return np.asarray(mat[name])


def _strings(values: np.ndarray, path: Path, name: str) -> np.ndarray:
    """A MATLAB cell array of strings (1 x N or N x 1) as a 1-D str array."""
    vector = values.ndim <= 1 or (values.ndim == 2 and min(values.shape) == 1)
    if values.dtype.kind not in "OU" or not vector:
        raise AnnotationError(
            path,
            None,
            f"variable {name!r} must be 1 x N strings, got {values.dtype} of shape {values.shape}",
        )
    try:
        return np.array([str(np.asarray(v).ravel()[0]) for v in values.ravel()], dtype=str)
    except IndexError:
        raise AnnotationError(path, None, f"variable {name!r} holds an empty entry") from None


def read_lfwa_labels(path: Path) -> LfwaLabels:
    """Read ``lfw_att_40.mat``; a file that is not MATLAB, lacks a variable, has shapes that
    disagree or labels other than 0/1 raises :class:`AnnotationError` naming the variable."""
    try:
        mat = scipy.io.loadmat(path)
    except (MatReadError, ValueError, TypeError, IndexError, OSError, NotImplementedError) as exc:
        raise AnnotationError(path, None, f"not a MATLAB v5 file scipy can read ({exc})") from None
    names = _strings(_variable(mat, path, "AttrName"), path, "AttrName")
    files = _strings(_variable(mat, path, "name"), path, "name")
    label = _variable(mat, path, "label")
    if label.shape != (len(files), len(names)):
        raise AnnotationError(
            path,
            None,
            f"variable 'label' has shape {label.shape}, expected {(len(files), len(names))} "
            f"({len(files)} entries of 'name' x {len(names)} of 'AttrName')",
        )
    if label.dtype.kind not in "biuf":
        raise AnnotationError(path, None, f"variable 'label' must be numbers, got {label.dtype}")
    bad = np.argwhere(~np.isin(label, (0, 1)))
    if len(bad):
        row, column = bad[0]
        raise AnnotationError(
            path,
            None,
            f"variable 'label' must hold 0 or 1, got {label[row, column]} at row {row + 1} "
            f"({names[column]})",
        )
    try:
        schema = Schema.binary(names.tolist())
    except SchemaError as exc:
        raise AnnotationError(path, None, f"variable 'AttrName': {exc}") from None
    ids = np.char.replace(files, "\\", "/")
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise AnnotationError(path, None, f"variable 'name' lists {unique[counts > 1][0]} twice")
    return LfwaLabels(ids, schema, label.astype(np.float32))


def find_image_dir(root: Path) -> Path:
    """The first of LFW's image folders in root (the deep-funneled one by default)."""
    return next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), root / IMAGE_DIRS[0])


def images_on_disk(image_dir: Path) -> np.ndarray:
    """``Person/file`` of every file one folder below ``image_dir`` (empty when absent)."""
    if not image_dir.is_dir():
        return np.array([], dtype=str)
    found: list[str] = []
    with os.scandir(image_dir) as people:
        for person in people:
            if person.is_dir():
                with os.scandir(person.path) as entries:
                    found += [f"{person.name}/{e.name}" for e in entries if e.is_file()]
    return np.array(found, dtype=str)


def _detect(root: Path) -> bool:
    return (root / LABEL_FILE).is_file()


@register_loader("lfwa", _detect, "LFW + LFWA: lfw-deepfunneled/<Person>/ + lfw_att_40.mat")
def read(root: Path, options: LoadOptions, collector: Collector) -> FaceDataset | None:
    """Read an LFW folder with LFWA's labels; the partition is generated (seeded, saved)."""
    path = root / LABEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{root}: no {LABEL_FILE}")
    table = collector.attempt("attributes", path, read_lfwa_labels)
    collector.report.files["attributes"] = f"{path} (MATLAB)"
    if table is None:
        return None
    ids = table.image_ids
    _, identity = np.unique(np.char.partition(ids, "/")[:, 0], return_inverse=True)
    identity = identity.astype(np.int32)
    total = TRAIN + TEST
    shares = ((1 - VAL_OF_TRAIN) * TRAIN / total, VAL_OF_TRAIN * TRAIN / total, TEST / total)
    partition, source = generated_partition(root, "lfwa", ids, identity, shares, options.split_seed)
    image_dir = find_image_dir(root)
    on_disk = images_on_disk(image_dir)
    unlabelled = np.sort(on_disk[~isin(on_disk, ids)])
    if len(unlabelled):
        collector.report.warnings.append(
            f"{len(unlabelled):,} images in {image_dir.name}/ have no labels in {LABEL_FILE} "
            f"and are not rows ({examples(unlabelled)})"
        )
    landmarks, boxes = detected_geometry(collector, root, ids, options.annotation_dirs)
    return FaceDataset(
        format="lfwa",
        root=root,
        image_dir=image_dir,
        image_ids=ids,
        schema=table.schema,
        labels=table.labels,
        partition=partition,
        identity=identity,
        landmarks=landmarks,
        boxes=boxes,
        present=isin(ids, on_disk),
        image_set="wild",
        sizes=np.tile(np.asarray(IMAGE_SIZE, np.int32), (len(ids), 1)),
        partition_source=source,
    )

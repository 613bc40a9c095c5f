"""CelebA (``celeba``): the official ``.txt`` files or Kaggle's ``.csv``, in the root or in the
official ``Anno/`` and ``Eval/`` subfolders, with ``img_align_celeba/`` (the aligned set, CelebA's
178x218 frame) or ``img_celeba/`` (the in-the-wild photos). Every table is joined onto the ids of
the attribute file; a partial image folder loads the images present and counts the missing ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faceattr.attributes import ATTRIBUTES
from faceattr.data.check import examples, image_names
from faceattr.data.formats import (
    AnnotationError,
    AttributeTable,
    read_attributes,
    read_identities,
    read_partition,
)
from faceattr.data.loaders import register_loader
from faceattr.data.loaders.common import (
    Collector,
    LoadOptions,
    aligned,
    aligned_geometry,
    find_annotation,
    isin,
    read_geometry,
    search_dirs,
)
from faceattr.data.record import FaceDataset, ImageSet
from faceattr.data.schema import CELEBA_SCHEMA
from faceattr.geometry.frame import ALIGNED_IMAGE_SIZE


@dataclass(frozen=True)
class ImageSetFiles:
    """The image folder and the geometry files of one image set."""

    image_dir: str
    landmarks: str
    boxes: str


IMAGE_SETS: dict[str, ImageSetFiles] = {
    "align": ImageSetFiles(
        "img_align_celeba", "list_landmarks_align_celeba", "list_bbox_align_celeba"
    ),
    "wild": ImageSetFiles("img_celeba", "list_landmarks_celeba", "list_bbox_celeba"),
}
ATTRIBUTE_FILE = "list_attr_celeba"
PARTITION_FILE = "list_eval_partition"
IDENTITY_FILE = "identity_CelebA"


def find_image_dir(root: str | Path, image_set: ImageSet = "align") -> Path:
    """The image folder of ``image_set``: in root or ``Img/``, unwrapping Kaggle's nested copy."""
    name = IMAGE_SETS[image_set].image_dir
    root = Path(root)
    for candidate in (root / name, root / "Img" / name):
        if candidate.is_dir():
            nested = candidate / name  # Kaggle's zip holds img_align_celeba/img_align_celeba/
            return nested if nested.is_dir() else candidate
    return root / name


def canonical(table: AttributeTable, path: Path) -> AttributeTable:
    """The table with its columns in CelebA's order; all 40 must be there."""
    if table.names == ATTRIBUTES:
        return table
    missing = [n for n in ATTRIBUTES if n not in table.names]
    if missing:
        line = 1 if path.suffix.lower() == ".csv" else 2
        raise AnnotationError(path, line, f"missing attributes: {', '.join(missing)}")
    order = [table.names.index(n) for n in ATTRIBUTES]
    return AttributeTable(table.image_ids, ATTRIBUTES, table.labels[:, order])


def read_celeba_attributes(path: Path) -> AttributeTable:
    """CelebA's attribute file, all 40 columns in CelebA's order."""
    return canonical(read_attributes(path), path)


def compare_ids(
    collector: Collector, ids: np.ndarray, theirs: np.ndarray, kind: str, must_cover: bool
) -> None:
    """Errors for ids that ``kind``'s file names but the attribute file lacks, and (when
    ``must_cover``) for ids it lacks."""
    attr, other = collector.files["attributes"].name, collector.files[kind].name
    extra = theirs[~isin(theirs, ids)]
    if len(extra):
        collector.error(
            f"{other} names {len(extra):,} images that {attr} lacks ({examples(extra)})"
        )
    lacking = ids[~isin(ids, theirs)]
    if len(lacking) and must_cover:
        collector.error(f"{other} lacks {len(lacking):,} images of {attr} ({examples(lacking)})")


def _detect(root: Path) -> bool:
    return find_annotation(root, ATTRIBUTE_FILE) is not None


@register_loader("celeba", _detect, "CelebA: list_attr_celeba.txt/.csv + img_align_celeba/")
def read(root: Path, options: LoadOptions, collector: Collector) -> FaceDataset | None:
    """Read a CelebA folder (either image set)."""
    image_set = options.image_set
    if image_set not in IMAGE_SETS:
        raise ValueError(
            f"unknown image set {image_set!r}; expected one of {', '.join(IMAGE_SETS)}"
        )
    dirs = options.annotation_dirs
    attr_path = find_annotation(root, ATTRIBUTE_FILE, dirs)
    if attr_path is None:
        searched = ", ".join(str(d) for d in search_dirs(root, dirs))
        raise FileNotFoundError(f"no {ATTRIBUTE_FILE}.txt or .csv in {searched}")
    table = collector.attempt("attributes", attr_path, read_celeba_attributes)
    if table is None:
        return None
    ids = table.image_ids
    partition = collector.attempt(
        "partition", find_annotation(root, PARTITION_FILE, dirs), read_partition, PARTITION_FILE
    )
    identity = collector.attempt(
        "identity", find_annotation(root, IDENTITY_FILE, dirs), read_identities, IDENTITY_FILE
    )
    for kind, other in (("partition", partition), ("identity", identity)):
        if other is not None:
            compare_ids(collector, ids, other.image_ids, kind, must_cover=True)
    files = IMAGE_SETS[image_set]
    lm, bx = read_geometry(collector, root, (files.landmarks, files.boxes), dirs)
    for kind, geometry in (("landmarks", lm), ("boxes", bx)):
        if geometry is not None:
            compare_ids(collector, ids, geometry.image_ids, kind, must_cover=False)
    landmarks, boxes = aligned_geometry(ids, lm, bx)
    image_dir = find_image_dir(root, image_set)
    sizes = None
    if image_set == "align":
        sizes = np.tile(np.asarray(ALIGNED_IMAGE_SIZE, np.int32), (len(ids), 1))
    return FaceDataset(
        format="celeba",
        root=root,
        image_dir=image_dir,
        image_ids=ids,
        schema=CELEBA_SCHEMA,
        labels=table.labels.astype(np.float32),
        partition=None
        if partition is None
        else aligned(ids, partition.image_ids, partition.partition, -1),
        identity=None
        if identity is None
        else aligned(ids, identity.image_ids, identity.identity, -1),
        landmarks=landmarks,
        boxes=boxes,
        present=isin(ids, image_names(image_dir)),
        image_set=image_set,
        sizes=sizes,
        geometry_stems=(files.landmarks, files.boxes),
    )

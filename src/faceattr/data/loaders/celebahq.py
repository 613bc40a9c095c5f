"""CelebA-HQ (``celebahq``): ``CelebA-HQ-img/<k>.jpg``, ``CelebAMask-HQ-attribute-anno.txt``
(CelebA's attribute format) and ``CelebA-HQ-to-CelebA-mapping.txt`` (``idx orig_idx orig_file``).

Image ``k`` is CelebA's ``orig_file``: through the mapping, CelebA's ``list_eval_partition`` and
``identity_CelebA`` (in the root, in ``annotation_dirs``, or in a sibling folder such as
``../celeba``) give CelebA-HQ CelebA's partition and identities, so that no CelebA val or test
face is trained on from either set. Landmarks come from the detector (``faceattr data landmarks``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from faceattr.data.check import image_names
from faceattr.data.formats import AnnotationError, read_identities, read_partition
from faceattr.data.loaders import register_loader
from faceattr.data.loaders.celeba import IDENTITY_FILE, PARTITION_FILE, read_celeba_attributes
from faceattr.data.loaders.common import (
    Collector,
    LoadOptions,
    aligned,
    detected_geometry,
    find_annotation,
    isin,
)
from faceattr.data.record import FaceDataset
from faceattr.data.schema import CELEBA_SCHEMA

IMAGE_DIR = "CelebA-HQ-img"
ATTRIBUTE_FILE = "CelebAMask-HQ-attribute-anno"
MAPPING_FILE = "CelebA-HQ-to-CelebA-mapping.txt"


def read_mapping(path: Path) -> dict[str, str]:
    """``{"<k>.jpg": CelebA file name}`` from the mapping file; a malformed line raises
    :class:`AnnotationError` naming it."""
    mapping: dict[str, str] = {}
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            tokens = line.split()
            if number == 1 and tokens[:1] == ["idx"]:
                continue
            if not tokens:
                continue
            if len(tokens) != 3 or not tokens[0].isdigit() or not tokens[1].isdigit():
                raise AnnotationError(
                    path, number, f"expected 'idx orig_idx orig_file', got {line.strip()!r}"
                )
            key = f"{int(tokens[0])}.jpg"
            if key in mapping:
                raise AnnotationError(path, number, f"image {tokens[0]} is mapped twice")
            mapping[key] = tokens[2]
    return mapping


def celeba_file(root: Path, stem: str, annotation_dirs: tuple[Path, ...]) -> Path | None:
    """CelebA's ``stem`` file for CelebA-HQ: in root or ``annotation_dirs``, else in a sibling
    folder of root."""
    found = find_annotation(root, stem, annotation_dirs)
    if found is not None or not root.parent.is_dir():
        return found
    for sibling in sorted(p for p in root.parent.iterdir() if p.is_dir() and p != root):
        for suffix in (".txt", ".csv"):
            if (sibling / f"{stem}{suffix}").is_file():
                return sibling / f"{stem}{suffix}"
    return None


def _detect(root: Path) -> bool:
    return find_annotation(root, ATTRIBUTE_FILE) is not None or (root / IMAGE_DIR).is_dir()


@register_loader(
    "celebahq", _detect, "CelebA-HQ: CelebA-HQ-img/ + CelebAMask-HQ-attribute-anno.txt"
)
def read(root: Path, options: LoadOptions, collector: Collector) -> FaceDataset | None:
    """Read a CelebA-HQ folder, with CelebA's partition and identities through the mapping."""
    dirs = options.annotation_dirs
    attr_path = find_annotation(root, ATTRIBUTE_FILE, dirs)
    if attr_path is None:
        raise FileNotFoundError(f"{root}: no {ATTRIBUTE_FILE}.txt")
    table = collector.attempt("attributes", attr_path, read_celeba_attributes)
    if table is None:
        return None
    ids = table.image_ids
    map_path = root / MAPPING_FILE
    mapping = collector.attempt("mapping", map_path if map_path.is_file() else None, read_mapping)
    partition = identity = None
    source = "none: no mapping file"
    if mapping is not None:
        unmapped = [i for i in ids[:: max(1, len(ids) // 1000)] if i not in mapping]
        unmapped = [i for i in ids if i not in mapping] if unmapped else []
        if unmapped:
            collector.error(f"{MAPPING_FILE} lacks {len(unmapped):,} images, e.g. {unmapped[0]}")
        originals = np.array([mapping.get(i, "") for i in ids.tolist()], dtype=str)
        part = collector.attempt(
            "partition", celeba_file(root, PARTITION_FILE, dirs), read_partition
        )
        ident = collector.attempt(
            "identity", celeba_file(root, IDENTITY_FILE, dirs), read_identities
        )
        if part is not None:
            partition = aligned(originals, part.image_ids, part.partition, -1)
            source = f"CelebA's, through {MAPPING_FILE}"
        else:
            source = f"none: no {PARTITION_FILE} (pass the CelebA folder in annotation dirs)"
        if ident is not None:
            identity = aligned(originals, ident.image_ids, ident.identity, -1)
    landmarks, boxes = detected_geometry(collector, root, ids, dirs)
    image_dir = root / IMAGE_DIR
    return FaceDataset(
        format="celebahq",
        root=root,
        image_dir=image_dir,
        image_ids=ids,
        schema=CELEBA_SCHEMA,
        labels=table.labels.astype(np.float32),
        partition=partition,
        identity=identity,
        landmarks=landmarks,
        boxes=boxes,
        present=isin(ids, image_names(image_dir)),
        image_set="wild",
        partition_source=source,
    )

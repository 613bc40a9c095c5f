"""Seed 003's test sets A, C, D and T, materialised once, losslessly and deterministically.

Every model cut by the same crop rule is then scored on exactly the same pixels. Each protocol
cuts the crop rule of the model it scores (a :class:`CropSpec`: seed 003's AFFACT box, seed
000's type A or B crop, the whole aligned image, ...). From the source images of one split:

- **A** from the dataset's landmarks (and boxes): the model's own crop, exactly as training cut
  it; for AFFACT models the AFFACT box of the landmarks (``affact_alignment_matrix``).
- **D** from the detector box alone: for AFFACT models the box scaled by 2 about its centre,
  upright (``box_matrix(scale=2)``); for the other rules ``CropSpec.detected_matrices``.
- **C** ten-crop of D: D is stored at ``c_source_size(size)`` (256 for 224, torchvision's
  resize-then-crop ratio) and the ten views are cut from it by exact slicing on load: the four
  corners and the centre at ``size``, then the same five mirrored (``views[5 + k]`` is
  ``views[k]`` flipped left-right; as a set, torchvision's ``TenCrop``). Models vote with
  :func:`majority_vote`.
- **T** D plus AFFACT transforms (``AffactAugment`` with its default jitter), drawn from a
  generator seeded by ``(seed, image_id)``: the same image gets the same transform whatever the
  split, order, batch or worker count.

Images without a box use the crop of their landmarks for D, C and T (AFFACT: the upright AFFACT
box; seed 003 fell back to the dataset box); images without what the model's crop needs use D's
crop for A; images with neither use the whole image. The manifest counts each fallback. Arrays
are uint8 ``.npy`` (never JPEG: seed 003 measured 0.75-1% more error after JPEG re-encoding), and
the manifest holds the ids, the parameters, the crop rule, the seed and the sha256 of every file.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from faceattr.data.cache_writer import RowFailure, SourceImage, create_array, render_rows
from faceattr.data.cache_writer import warp_to_uint8 as warp_views
from faceattr.data.loaders import DatasetSource
from faceattr.data.record import FaceDataset
from faceattr.data.schema import CELEBA_SCHEMA
from faceattr.defaults import PROTOCOLS
from faceattr.geometry import (
    AffactAugment,
    AffactJitter,
    FaceBox,
    affact_box,
    face_box_matrix,
)
from faceattr.geometry.affine import similarity_matrix
from faceattr.training.batch import CropSpec

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "faceattr-protocols"
DETECTED_BOX_SCALE = 2.0
"""Seed 003 scales detector boxes by 2 for test sets C, D and T."""
TEN_CROP_VIEWS = 10
DESCRIPTIONS = {
    "A": "the model's own crop of the landmarks (AFFACT models: the AFFACT box)",
    "C": "ten-crop of D (corners, centre and their mirrors); majority vote",
    "D": "the model's crop of the detector box (AFFACT models: the box x2, upright)",
    "T": "D plus fixed-seed AFFACT transforms",
}


def c_source_size(size: int) -> int:
    """Side of the D crop that C's ten views are cut from: ``size / 14`` more on each side.

    256 for 224, torchvision's resize-256-crop-224 ratio; the margin is whole, so the centre view
    is exactly centred and the ten views are exactly the set torchvision's ``TenCrop`` cuts.
    """
    return size + 2 * int(round(size / 14))


AFFACT_CROP = CropSpec("affact", (224, 224), DETECTED_BOX_SCALE)
"""Seed 003's crop rule: the protocols of an AFFACT model (and of ``faceattr data protocols``)."""


@dataclass(frozen=True)
class CropCounts:
    """How many images each protocol's crop came from, by source.

    For A, ``own`` counts the model's crop rule applied to the dataset's landmarks and boxes (as
    training cut it) and ``fallback`` D's crop where those are missing; for D, C and T, ``own``
    counts crops from the detector box and ``fallback`` crops from the landmarks alone.
    """

    own: int
    fallback: int
    whole_image: int


def detected_box_matrices(
    crop: CropSpec, landmarks: np.ndarray, boxes: np.ndarray, image_sizes: np.ndarray
) -> tuple[np.ndarray, CropCounts]:
    """D's matrices ``(N, 2, 3)`` at ``crop.out_size`` and what they came from: ``crop``'s rule
    from the detector box (for AFFACT models the box x2); else, without a box, the crop of the
    landmarks (AFFACT: the upright AFFACT box); else the whole image.

    ``landmarks`` ``(N, 5, 2)``, ``boxes`` ``(N, 4)`` (x, y, width, height) and ``image_sizes``
    ``(N, 2)`` (width, height); NaN marks an unknown box or landmark set.
    """
    has_box, by_landmarks = _detected_sources(crop, landmarks, boxes)
    matrices = _whole_image_matrices(image_sizes, crop.out_size)
    if has_box.any():
        matrices[has_box] = crop.detected_matrices(boxes[has_box])
    if by_landmarks.any() and crop.kind == "affact":
        aligned = affact_box(landmarks[by_landmarks])
        upright = FaceBox(aligned.center, aligned.size, np.zeros(len(aligned)))
        matrices[by_landmarks] = face_box_matrix(upright, crop.out_size)
    elif by_landmarks.any():
        matrices[by_landmarks] = crop.matrices(
            landmarks[by_landmarks], boxes[by_landmarks], image_sizes[by_landmarks]
        )
    whole = len(boxes) - int(has_box.sum()) - int(by_landmarks.sum())
    return matrices, CropCounts(int(has_box.sum()), int(by_landmarks.sum()), whole)


def aligned_matrices(
    crop: CropSpec, landmarks: np.ndarray, boxes: np.ndarray, image_sizes: np.ndarray
) -> tuple[np.ndarray, CropCounts]:
    """A's matrices ``(N, 2, 3)`` and what they came from: the model's own crop of the dataset's
    landmarks and boxes (exactly training's), D's crop where those are missing."""
    own = ~crop.missing(landmarks, boxes)
    matrices, _ = detected_box_matrices(crop, landmarks, boxes, image_sizes)
    if own.any():
        matrices[own] = crop.matrices(landmarks[own], boxes[own], image_sizes[own])
    has_box, by_landmarks = _detected_sources(crop, landmarks, boxes)
    whole = int((~own & ~has_box & ~by_landmarks).sum())
    return matrices, CropCounts(int(own.sum()), len(boxes) - int(own.sum()) - whole, whole)


def _detected_sources(
    crop: CropSpec, landmarks: np.ndarray, boxes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """D's rows cut from the box, and rows without a box cut from the landmarks."""
    has_box, has_landmarks = _known(landmarks, boxes)
    return has_box, ~has_box & has_landmarks & ~crop.missing(landmarks, boxes)


def _known(landmarks: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    has_box = np.isfinite(boxes).all(axis=1) & (boxes[:, 2:] > 0).all(axis=1)
    return has_box, np.isfinite(landmarks).all(axis=(1, 2))


def _whole_image_matrices(image_sizes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    wh = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2)
    scale = min(size) / wh.max(axis=1)
    return similarity_matrix((wh - 1.0) / 2.0, scale, np.zeros(len(wh)), size)


def crop_counts(
    protocol: str, crop: CropSpec, landmarks: np.ndarray, boxes: np.ndarray
) -> CropCounts:
    """What ``protocol``'s crops of these images are built from, for models cut by ``crop``."""
    sizes = np.ones((len(boxes), 2))
    rule = aligned_matrices if protocol == "A" else detected_box_matrices
    return rule(crop, landmarks, boxes, sizes)[1]


def ten_crop(images: np.ndarray, size: int) -> np.ndarray:
    """``(N, L, L, 3)`` -> ``(N, 10, size, size, 3)``: corners, centre, then their mirrors.

    Order: top-left, top-right, bottom-left, bottom-right, centre (torchvision's), then each of
    them flipped left-right. Exact slicing: no resampling.
    """
    height, width = images.shape[1:3]
    if size > min(height, width):
        raise ValueError(
            f"ten-crop of {size} px needs images at least that large, got {height}x{width}"
        )
    top, left = int(round((height - size) / 2.0)), int(round((width - size) / 2.0))
    origins = [
        (0, 0),
        (0, width - size),
        (height - size, 0),
        (height - size, width - size),
        (top, left),
    ]
    five = np.stack([images[:, y : y + size, x : x + size] for y, x in origins], axis=1)
    return np.concatenate([five, five[:, :, :, ::-1]], axis=1)


def majority_vote(scores: np.ndarray | torch.Tensor, threshold: float = 0.5) -> np.ndarray:
    """Per-attribute majority of ``(N, V, A)`` view scores (probabilities) -> ``(N, A)`` uint8.

    A view votes positive when its score exceeds ``threshold``; a tie (5 of 10) goes to the mean
    score across views.
    """
    values = (
        scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    )
    if values.ndim != 3:
        raise ValueError(f"scores must have shape (N, views, attributes), got {values.shape}")
    votes = (values > threshold).sum(axis=1) * 2
    views = values.shape[1]
    tie_break = values.mean(axis=1) > threshold
    return np.where(votes == views, tie_break, votes > views).astype(np.uint8)


def image_seed(seed: int, image_id: str) -> int:
    """A 63-bit generator seed for one image's T transform, from the run seed and its id."""
    digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass(frozen=True)
class ProtocolRenderer:
    """Renders one decoded image into every requested protocol (picklable, for worker processes)."""

    protocols: tuple[str, ...]
    crop: CropSpec
    """The model's crop rule at the protocols' view size."""
    seed: int

    def __call__(self, image: np.ndarray, source: SourceImage) -> dict[str, np.ndarray]:
        height, width = image.shape[:2]
        args = (source.landmarks[None], source.box[None], np.array([[width, height]]))
        size = self.crop.out_size[0]
        rendered: dict[str, np.ndarray] = {}
        detected = detected_box_matrices(self.crop, *args)[0]
        if "A" in self.protocols:
            rendered["A"] = warp_views(image, aligned_matrices(self.crop, *args)[0], size)[0]
        if "D" in self.protocols:
            rendered["D"] = warp_views(image, detected, size)[0]
        if "C" in self.protocols:
            large = c_source_size(size)
            crop = replace(self.crop, out_size=(large, large))
            rendered["C"] = warp_views(image, detected_box_matrices(crop, *args)[0], large)[0]
        if "T" in self.protocols:
            rendered["T"] = self._transformed(image, detected, source.image_id)
        return rendered

    def _transformed(self, image: np.ndarray, detected: np.ndarray, image_id: str) -> np.ndarray:
        generator = torch.Generator().manual_seed(image_seed(self.seed, image_id))
        source = torch.tensor(image).permute(2, 0, 1)[None]
        size = self.crop.out_size
        augmented = AffactAugment(AffactJitter(), size)(source, detected, generator=generator)
        pixels = (augmented.images[0] * 255.0).round_().clamp_(0, 255).to(torch.uint8)
        return pixels.permute(1, 2, 0).numpy()


@dataclass(frozen=True)
class ProtocolSet:
    """One materialised protocol: stored pixels, ids and labels, with its views cut on demand."""

    name: str
    images: np.ndarray
    """Stored uint8 array (memory map): ``(N, size, size, 3)``, or for C ``(N, L, L, 3)``."""
    image_ids: np.ndarray
    labels: np.ndarray
    """``(N, K)`` float32 labels of the dataset's ``attributes`` (NaN: missing)."""
    size: int
    attributes: tuple[str, ...]
    """The dataset's attribute names, the columns of ``labels``."""

    @property
    def views(self) -> int:
        """Views per image: 10 for C, else 1."""
        return TEN_CROP_VIEWS if self.name == "C" else 1

    def __len__(self) -> int:
        return len(self.image_ids)

    def batch(self, indices: Sequence[int] | np.ndarray | slice) -> np.ndarray:
        """``(B, views, size, size, 3)`` uint8 views of the images ``indices``."""
        stored = np.asarray(self.images[indices])
        return ten_crop(stored, self.size) if self.name == "C" else stored[:, None]


@dataclass(frozen=True)
class ProtocolManifest:
    """What ``materialise_protocols`` wrote."""

    directory: Path
    split: str
    size: int
    seed: int
    image_ids: tuple[str, ...]
    crop: CropSpec
    """The crop rule the protocols were cut with."""
    sha256: dict[str, str]
    """File name -> sha256 of its bytes."""
    crop_counts: dict[str, CropCounts]
    skipped: tuple[tuple[str, str], ...]
    """``(image_id, reason)`` of images that could not be decoded (left out of every protocol)."""
    seconds: float


def materialise_protocols(
    source: str | Path | DatasetSource,
    out: str | Path,
    *,
    protocols: Sequence[str] = PROTOCOLS,
    split: str = "test",
    size: int = 224,
    seed: int = 0,
    limit: int | None = None,
    workers: int = 0,
    progress: bool = True,
    crop: CropSpec = AFFACT_CROP,
) -> ProtocolManifest:
    """Write the present images of ``split`` of ``source`` (a dataset root, its format detected,
    or a :class:`DatasetSource`) as the ``protocols`` into ``out`` (overwriting).

    ``crop`` is the crop rule of the models to score (its ``out_size`` is replaced by ``size``);
    seed 003's AFFACT crops by default. ``limit`` keeps the first N images of the split (a quick
    look). Files: ``<P>.npy`` per protocol, ``image_ids.npy``, ``labels.npy`` and
    ``manifest.json``.
    """
    started = time.perf_counter()
    chosen = tuple(dict.fromkeys(p.upper() for p in protocols))
    unknown = [p for p in chosen if p not in PROTOCOLS]
    if unknown or not chosen:
        raise ValueError(f"unknown protocols {unknown}; choose from {', '.join(PROTOCOLS)}")
    source, out = DatasetSource.of(source), Path(out)
    crop = replace(crop, out_size=(size, size))
    data = source.load()
    rows = data.split_indices(split)[:limit]  # present images only
    n = len(rows)
    landmarks = _rows_or_nan(data.landmarks, rows, (5, 2))
    boxes = _rows_or_nan(data.boxes, rows, (4,))
    out.mkdir(parents=True, exist_ok=True)
    shapes: dict[str, tuple[int, ...]] = {
        p: (c_source_size(size),) * 2 + (3,) if p == "C" else (size, size, 3) for p in chosen
    }
    for p in chosen:
        create_array(out / f"{p}.npy", n, shapes[p], np.dtype(np.uint8))
    failures: list[RowFailure] = []
    sources = [
        SourceImage(k, str(data.image_ids[i]), str(data.image_path(i)), landmarks[k], boxes[k])
        for k, i in enumerate(rows)
    ]
    render_rows(
        sources,
        ProtocolRenderer(chosen, crop, seed),
        {p: out / f"{p}.npy" for p in chosen},
        workers=workers,
        on_chunk=lambda _written, failed: failures.extend(failed),
        desc=f"protocols {','.join(chosen)}",
        progress=progress,
    )
    kept = np.setdiff1d(np.arange(n), [f.row for f in failures])
    if len(kept) < n:
        for p in chosen:
            _keep_rows(out / f"{p}.npy", kept)
    image_ids = np.asarray(data.image_ids[rows[kept]], dtype=str)
    np.save(out / "image_ids.npy", image_ids)
    np.save(out / "labels.npy", np.asarray(data.labels[rows[kept]], dtype=np.float32))
    files = [f"{p}.npy" for p in chosen] + ["image_ids.npy", "labels.npy"]
    manifest = ProtocolManifest(
        directory=out,
        split=split,
        size=size,
        seed=seed,
        image_ids=tuple(image_ids.tolist()),
        sha256={f: file_sha256(out / f) for f in files},
        crop=crop,
        crop_counts={p: crop_counts(p, crop, landmarks[kept], boxes[kept]) for p in chosen},
        skipped=tuple((f.image_id, f.reason) for f in sorted(failures, key=lambda f: f.row)),
        seconds=time.perf_counter() - started,
    )
    (out / MANIFEST_FILE).write_text(_manifest_json(manifest, data, shapes))
    return manifest


def _rows_or_nan(values: np.ndarray | None, rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if values is None:
        return np.full((len(rows), *shape), np.nan)
    return np.asarray(values[rows], dtype=np.float64)


def _keep_rows(path: Path, kept: np.ndarray) -> None:
    """Rewrite a ``.npy`` file with only the rows ``kept`` (after images that failed to decode)."""
    source = np.load(path, mmap_mode="r")
    temporary = path.with_suffix(".tmp.npy")
    target = np.lib.format.open_memmap(
        temporary, mode="w+", dtype=source.dtype, shape=(len(kept), *source.shape[1:])
    )
    for start in range(0, len(kept), 256):
        target[start : start + 256] = source[kept[start : start + 256]]
    target.flush()
    del source, target
    os.replace(temporary, path)


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest_json(
    manifest: ProtocolManifest, data: FaceDataset, shapes: dict[str, tuple[int, ...]]
) -> str:
    """Deterministic JSON: no timings or absolute output paths, so two runs write the same file."""
    count = len(manifest.image_ids)
    protocols: dict[str, Any] = {
        p: {
            "file": f"{p}.npy",
            "description": DESCRIPTIONS[p],
            "stored_shape": [count, *shapes[p]],
            "views": TEN_CROP_VIEWS if p == "C" else 1,
            "view_size": manifest.size,
            "crop_counts": counts.__dict__,
            "sha256": manifest.sha256[f"{p}.npy"],
        }
        for p, counts in manifest.crop_counts.items()
    }
    payload = {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "source_root": str(data.root.resolve()),
        "dataset_format": data.format,
        "image_set": data.image_set,
        "attributes": list(data.attribute_names),
        "split": manifest.split,
        "size": manifest.size,
        "seed": manifest.seed,
        "detected_box_scale": DETECTED_BOX_SCALE,
        "crop": crop_rule(manifest.crop),
        "c_source_size": c_source_size(manifest.size),
        "t_jitter": asdict(AffactJitter()),
        "protocols": protocols,
        "files": manifest.sha256,
        "skipped": [list(s) for s in manifest.skipped],
        "image_ids": list(manifest.image_ids),
    }
    return json.dumps(payload, indent=1, sort_keys=True) + "\n"


def crop_rule(crop: CropSpec) -> dict[str, Any]:
    """The crop rule as a manifest or eval.json records it."""
    return {
        "kind": crop.kind,
        "box_scale": crop.box_scale,
        "canonical_landmarks": crop.canonical_landmarks,
    }


def load_protocol(directory: str | Path, name: str, verify: bool = False) -> ProtocolSet:
    """Open protocol ``name`` of a materialised folder (memory-mapped); ``verify`` checks sha256."""
    directory = Path(directory)
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{directory / MANIFEST_FILE}: not a {MANIFEST_FORMAT} manifest")
    if name not in manifest["protocols"]:
        raise ValueError(
            f"{directory}: protocol {name!r} not materialised; it has "
            f"{', '.join(manifest['protocols'])}"
        )
    files = [f"{name}.npy", "image_ids.npy", "labels.npy"]
    if verify:
        for file in files:
            if file_sha256(directory / file) != manifest["files"][file]:
                raise ValueError(f"{directory / file}: sha256 differs from {MANIFEST_FILE}")
    return ProtocolSet(
        name=name,
        images=np.load(directory / files[0], mmap_mode="r"),
        image_ids=np.load(directory / files[1]),
        labels=np.asarray(np.load(directory / files[2]), dtype=np.float32),
        size=int(manifest["size"]),
        attributes=tuple(manifest.get("attributes", CELEBA_SCHEMA.names)),
    )

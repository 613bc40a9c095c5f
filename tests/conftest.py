"""Shared fixtures: the real CelebA sample (skipped with a reason where absent), and a tiny fake
CelebA folder in the real format, written through ``faceattr.data.formats``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image, ImageDraw

from faceattr.attributes import ATTRIBUTES
from faceattr.data.formats import (
    AttributeTable,
    BoxTable,
    IdentityTable,
    LandmarkTable,
    PartitionTable,
    write_attributes,
    write_boxes,
    write_identities,
    write_landmarks,
    write_partition,
)
from faceattr.data.loaders import load_dataset
from faceattr.data.record import FaceDataset
from faceattr.image_files import black_png

if TYPE_CHECKING:
    from faceattr.inference.predictor import Predictor

REPO = Path(__file__).resolve().parents[1]

ALIGNED_SIZE = (178, 218)  # width, height of CelebA's aligned images
WILD_SIZE = (320, 300)
# CelebA's mean aligned landmarks (lefteye, righteye, nose, leftmouth, rightmouth), x y.
MEAN_LANDMARKS = np.array([[69, 111], [108, 111], [88, 134], [72, 152], [106, 152]], np.float32)


def real_celeba_path() -> Path | None:
    """The real CelebA sample: ``$FACEATTR_CELEBA``, or ``../shared/celeba`` beside the repo."""
    candidates = [os.environ.get("FACEATTR_CELEBA"), str(REPO.parent / "shared" / "celeba")]
    for c in candidates:
        if c and (Path(c) / "list_attr_celeba.txt").is_file():
            return Path(c)
    return None


def real_sample_path(name: str, marker: str) -> Path | None:
    """The real sample ``name``: ``$FACEATTR_<NAME>``, ``../shared/<name>`` beside the repo, or
    beside the CelebA sample (``$FACEATTR_CELEBA/../<name>``), when it holds ``marker``."""
    celeba = os.environ.get("FACEATTR_CELEBA")
    candidates = [
        os.environ.get(f"FACEATTR_{name.upper()}"),
        str(REPO.parent / "shared" / name),
        str(Path(celeba).parent / name) if celeba else None,
    ]
    for c in candidates:
        if c and (Path(c) / marker).exists():
            return Path(c)
    return None


def _sample(name: str, marker: str) -> Path:
    root = real_sample_path(name, marker)
    if root is None:
        pytest.skip(
            f"real {name} sample not found: set FACEATTR_{name.upper()} or place it at "
            f"../shared/{name}"
        )
    return root


@pytest.fixture(scope="session")
def lfw_root() -> Path:
    """The real LFW sample (392 images, the labels of all 13,143); read-only."""
    return _sample("lfw", "lfw_att_40.mat")


@pytest.fixture(scope="session")
def utkface_root() -> Path:
    """The real UTKFace sample (598 images, 5 of them with malformed names); read-only."""
    return _sample("utkface", "UTKFace")


@pytest.fixture(scope="session")
def celebahq_root() -> Path:
    """The real CelebA-HQ sample (600 images, the annotations of all 30,000); read-only."""
    return _sample("celebahq", "CelebAMask-HQ-attribute-anno.txt")


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$FACEATTR_CACHE`` for the whole session: the tests never read or fill the user's cache
    (detector landmarks, protocol sets); a test may still point it elsewhere."""
    folder = tmp_path_factory.mktemp("faceattr-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEATTR_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="session")
def celeba_root() -> Path:
    """Root of the real CelebA sample (read-only); skips visibly when it is absent."""
    root = real_celeba_path()
    if root is None:
        pytest.skip(
            "real CelebA sample not found: set FACEATTR_CELEBA or place it at ../shared/celeba"
        )
    return root


def detected_subset(real: FaceDataset, root: Path, train: int, val: int) -> Path:
    """``root``: a CelebA folder of the real sample's first ``train`` training images (and one
    positive of each attribute they lack) and first ``val`` validation images (links to the real
    files), with YuNet's landmarks and boxes as `faceattr data landmarks` writes them."""
    from faceattr.data.landmarks import detect_landmarks

    for name in ("list_attr_celeba.txt", "list_eval_partition.txt", "identity_CelebA.txt"):
        os.symlink(real.root / name, root / name)
    images = root / "img_align_celeba"
    images.mkdir()
    training = real.split_indices("train")
    chosen = list(training[:train])
    for column in range(real.labels.shape[1]):  # a positive of every attribute (class weights)
        if not real.labels[chosen, column].any():
            chosen.append(training[np.flatnonzero(real.labels[training, column])[0]])
    rows = np.concatenate([chosen, real.split_indices("val")[:val]])
    for i in rows:
        path = real.image_path(int(i))
        os.symlink(path, images / path.name)
    detect_landmarks(root, progress=False)
    return root


@pytest.fixture(scope="session")
def small_detected_celeba(
    real_celeba: FaceDataset, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """16 training and 8 validation faces of the real sample, with detected landmarks."""
    return detected_subset(real_celeba, tmp_path_factory.mktemp("small-detected"), 16, 8)


def detected_sample(source: Path, root: Path, files: list[str], images: list[Path]) -> Path:
    """``root``: links to ``files`` of the real sample ``source`` and to ``images`` (in their
    folders, relative to ``source``), with YuNet's landmarks and boxes (``faceattr data
    landmarks``'s landmarks.txt and boxes.txt) for the AFFACT crop."""
    from faceattr.data.landmarks import detect_landmarks

    for name in files:
        os.symlink(source / name, root / name)
    for path in images:
        (root / path.parent).mkdir(exist_ok=True)
        os.symlink(source / path, root / path)
    detect_landmarks(root, progress=False)
    return root


@pytest.fixture(scope="session")
def small_detected_celebahq(
    celebahq_root: Path, celeba_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """12 images of CelebA-HQ's training partition and 4 of its val partition (CelebA's through
    the mapping) from the real sample, with detected landmarks."""
    hq = load_dataset(celebahq_root, annotation_dirs=[celeba_root])
    rows = np.concatenate([hq.split_indices("train")[:12], hq.split_indices("val")[:4]])
    files = ["CelebAMask-HQ-attribute-anno.txt", "CelebA-HQ-to-CelebA-mapping.txt"]
    images = [hq.image_path(int(i)).relative_to(celebahq_root) for i in rows]
    return detected_sample(celebahq_root, tmp_path_factory.mktemp("small-hq"), files, images)


@pytest.fixture(scope="session")
def small_detected_utkface(utkface_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 30 well-named images of the real UTKFace sample (a seeded 70/10/20 partition is
    drawn for them), with detected landmarks."""
    utk = load_dataset(utkface_root)
    images = [utk.image_path(i).relative_to(utkface_root) for i in range(30)]
    return detected_sample(utkface_root, tmp_path_factory.mktemp("small-utk"), [], images)


@pytest.fixture(scope="session")
def detected_celeba(real_celeba: FaceDataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4,000 training and 200 validation faces of the real sample, with detected landmarks."""
    return detected_subset(real_celeba, tmp_path_factory.mktemp("detected"), 4000, 200)


@pytest.fixture(scope="session")
def real_celeba(celeba_root: Path, tmp_path_factory: pytest.TempPathFactory) -> FaceDataset:
    """The real sample's own files, loaded once per session (about 2 s); do not modify it.

    The annotation cache is an empty folder, so landmarks a detector left in the user's cache
    do not change what the tests see.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEATTR_CACHE", str(tmp_path_factory.mktemp("empty-cache")))
        return load_dataset(celeba_root)


def _draw_face(size: tuple[int, int], points: np.ndarray, seed: int) -> Image.Image:
    """A flat face: skin ellipse around the landmarks, dark eyes, nose and mouth corners."""
    rng = np.random.default_rng(seed)
    background = tuple(int(c) for c in rng.integers(40, 200, 3))
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    centre = points.mean(axis=0)
    half = np.array([1.0, 1.4]) * np.linalg.norm(points[1] - points[0])
    draw.ellipse([*(centre - half), *(centre + half)], fill=(224, 172, 140))
    for x, y in points:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(40, 30, 30))
    return image


def write_fake_celeba(root: Path, count: int = 12, seed: int = 0) -> Path:
    """Write a tiny CelebA folder at ``root``: both image sets and every annotation file.

    Images are ``000001.jpg``...; identities come in threes (identity k has images 3k-2..3k) and
    the partition is identity-disjoint: the first half of the identities train, then val, test.
    """
    rng = np.random.default_rng(seed)
    ids = np.array([f"{i:06d}.jpg" for i in range(1, count + 1)])
    identity = np.arange(count) // 3 + 1
    n_ids = int(identity.max())
    n_train = n_ids // 2
    partition = np.digitize(identity - 1, [n_train, n_train + (n_ids - n_train) // 2])
    labels = rng.integers(0, 2, (count, len(ATTRIBUTES)))
    aligned = MEAN_LANDMARKS + rng.integers(-4, 5, (count, 5, 2))
    offsets = rng.integers(
        0, [WILD_SIZE[0] - ALIGNED_SIZE[0], WILD_SIZE[1] - ALIGNED_SIZE[1]], (count, 2)
    )
    wild = aligned + offsets[:, None, :]
    align_boxes = np.tile(np.array([39, 71, 100, 120], np.float32), (count, 1))
    wild_boxes = align_boxes + np.concatenate([offsets, np.zeros_like(offsets)], axis=1)

    write_attributes(root / "list_attr_celeba.txt", AttributeTable(ids, ATTRIBUTES, labels))
    write_partition(root / "list_eval_partition.txt", PartitionTable(ids, partition))
    write_identities(root / "identity_CelebA.txt", IdentityTable(ids, identity))
    write_landmarks(root / "list_landmarks_align_celeba.txt", LandmarkTable(ids, aligned))
    write_landmarks(root / "list_landmarks_celeba.txt", LandmarkTable(ids, wild))
    write_boxes(root / "list_bbox_align_celeba.txt", BoxTable(ids, align_boxes))
    write_boxes(root / "list_bbox_celeba.txt", BoxTable(ids, wild_boxes))
    (root / "img_align_celeba").mkdir()
    (root / "img_celeba").mkdir()
    for i, image_id in enumerate(ids):
        _draw_face(ALIGNED_SIZE, aligned[i], seed + i).save(root / "img_align_celeba" / image_id)
        _draw_face(WILD_SIZE, wild[i], seed + i).save(root / "img_celeba" / image_id)
    return root


@pytest.fixture
def fake_celeba(tmp_path: Path) -> Path:
    """A fresh tiny CelebA folder (12 images, 4 identities, 6/3/3 split) in the real formats."""
    return write_fake_celeba(tmp_path / "celeba")


@pytest.fixture(scope="session")
def synth_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder: recipe demo_facenet (facenet-mtl, 36x36, six attributes) trained two epochs
    on 200 synthetic faces with landmarks and boxes (about 160/20/20; a few seconds). Tests that
    write into it (evaluations, thresholds) must use their own output names."""
    from faceattr.data.synth.generate import generate_dataset
    from faceattr.training import load_config, train

    base = tmp_path_factory.mktemp("synth-run")
    generate_dataset(base / "celeba", 200, seed=0, workers=0, progress=False)
    overrides = [f"data.root={base / 'celeba'}", f"trainer.output_dir={base / 'runs'}"]
    overrides += ["trainer.epochs=2", "trainer.progress=false"]
    return train(load_config("demo_facenet", overrides)).run_dir


@pytest.fixture(scope="session")
def tiny_real_model(celeba_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``best/`` export of facenet-mtl (all 40 attributes) trained for one epoch on 64 real
    training faces (canonical landmarks, decoded JPEGs): a real model for the inference and
    retrieval tests."""
    from faceattr.training.config import load_config
    from faceattr.training.trainer import train

    out = tmp_path_factory.mktemp("tiny-real-model")
    overrides = [
        f"data.root={celeba_root}",
        "data.canonical_landmarks=true",
        "data.limit_train=64",
        "data.limit_val=32",
        "data.batch_size=32",
        f"data.attributes=[{','.join(ATTRIBUTES)}]",
        "model.name=facenet-mtl",
        "trainer.epochs=1",
        "trainer.progress=false",
        "trainer.log_every_n_steps=1",
        f"trainer.output_dir={out}",
        "trainer.name=tiny-real",
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEATTR_CACHE", str(out / "annotations"))
        return train(load_config(None, overrides)).best


KINDS_SCHEMA = [
    {"name": "Male", "kind": "binary"},
    {"name": "hair", "kind": "categorical", "classes": ["black", "blond", "brown", "gray"]},
    {"name": "age", "kind": "numeric", "low": 0, "high": 90, "unit": "years"},
    {"name": "Smiling", "kind": "binary"},
]
KINDS_THRESHOLDS = [0.3, 0.5, 0.5, 0.7]
"""One per attribute, as model.json stores them; only the binary ones' (0.3, 0.7) apply."""


@pytest.fixture(scope="session")
def kinds_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The export folder of an untrained facenet-mtl (36x36 grey, seed 0) with a binary, a
    categorical, a numeric and another binary attribute (:data:`KINDS_SCHEMA`), its thresholds
    :data:`KINDS_THRESHOLDS`: outputs of every kind, to decode and compare across backends."""
    import torch

    from faceattr.data.schema import Schema
    from faceattr.models import create_model
    from faceattr.training.checkpoint import export_model, save_thresholds

    torch.manual_seed(0)
    model = create_model("facenet-mtl", Schema.from_json(KINDS_SCHEMA)).eval()
    folder = export_model(model, tmp_path_factory.mktemp("kinds-model") / "best")
    save_thresholds(folder, KINDS_THRESHOLDS, "test", None)
    return folder


@pytest.fixture(scope="session")
def predictor(tiny_real_model: Path) -> Predictor:
    """The tiny real model with the YuNet detector, on the CPU."""
    from faceattr.inference.predictor import Predictor

    return Predictor.from_checkpoint(tiny_real_model, device="cpu")


@pytest.fixture(scope="session")
def installed() -> Callable[[str], Path]:
    """``installed(name)``: the file of installed weights ``name``, or a visible skip that gives
    the command installing them."""
    from faceattr.models.pretrained import INSTALLED_WEIGHTS, installed_weights_path

    def find(name: str) -> Path:
        try:
            return installed_weights_path(name)
        except FileNotFoundError:
            pytest.skip(f"weights {name!r} not installed: {INSTALLED_WEIGHTS[name].install}")

    return find


BOMB_SIDE = 13_000
"""Side of the bomb PNG: 169 megapixels, under Pillow's own bomb limit (179), over the budget."""


@pytest.fixture(scope="session")
def png_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-bit black PNG of 13,000 x 13,000 in about 20 KB."""
    path = tmp_path_factory.mktemp("bombs") / "bomb.png"
    path.write_bytes(black_png(BOMB_SIDE, BOMB_SIDE))
    return path


@pytest.fixture(scope="session")
def hdr_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Radiance .hdr (which Pillow cannot read; OpenCV can) declaring 12,000 x 12,000."""
    path = tmp_path_factory.mktemp("bombs") / "bomb.hdr"
    path.write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 12000 +X 12000\n" + b"\0" * 4096)
    return path

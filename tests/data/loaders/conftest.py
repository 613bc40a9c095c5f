"""The real samples of LFW+LFWA, UTKFace and CelebA-HQ (skipped with a reason where absent), and
a private annotation cache per test, so generated partitions never reach the user's cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


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


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$FACEATTR_CACHE`` for each test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("FACEATTR_CACHE", str(folder))
    return folder


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

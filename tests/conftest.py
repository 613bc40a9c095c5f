"""Shared fixtures: the real CelebA sample (skipped with a reason where absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def real_celeba_path() -> Path | None:
    """The real CelebA sample: ``$FACEATTR_CELEBA`` or ``../shared/celeba`` beside the repository."""
    candidates = [os.environ.get("FACEATTR_CELEBA"), str(REPO.parent / "shared" / "celeba")]
    for c in candidates:
        if c and (Path(c) / "list_attr_celeba.txt").is_file():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def celeba_root() -> Path:
    """Root of the real CelebA sample (read-only); skips visibly when it is absent."""
    root = real_celeba_path()
    if root is None:
        pytest.skip("real CelebA sample not found: set FACEATTR_CELEBA or place it at ../shared/celeba")
    return root

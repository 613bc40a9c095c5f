"""A private annotation cache per loader test, so generated partitions never reach the user's
cache (the real samples of LFW+LFWA, UTKFace and CelebA-HQ are fixtures of tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$FACEATTR_CACHE`` for each test."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("FACEATTR_CACHE", str(folder))
    return folder

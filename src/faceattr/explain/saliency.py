"""Where a model looks for an attribute: a class activation map (the ``grad-cam`` package) of one
attribute's output at the backbone's last convolutional stage, and the heatmap laid over the face.

The target (:class:`AttributeTarget`) follows the attribute's kind: a binary attribute's logit
(:func:`faceattr.models.base.binary_logits`: the output itself for sigmoid heads, ``z1 - z0`` for
seed 000's 2-way softmax heads), so the map marks evidence *for* the attribute; a categorical
attribute's logit of the class the model predicts (evidence for that class; its probability
saturates near 1, where the gradient vanishes); a numeric attribute's expected value in its unit
(evidence for a *higher* value). The layer is the last of
:func:`~faceattr.explain.feature_maps.conv_stages`: facenet-mtl's second conv block (18x18 on a
36x36 input), the last stage of a timm backbone (stride 32). The method follows the head:

- backbones ending in global average pooling (timm, MobileNetV2) get Grad-CAM: each channel
  weighted by its gradient averaged over the map, as every position weighs alike there;
- flattening trunks (facenet-mtl, scratch-cnn: ``model.fixed_size``), whose dense layer weighs
  each position separately, get HiResCAM (gradient x activation per position, Draelos & Carin
  2020), which shows the positions that layer used. Grad-CAM's averaged weights light up every
  edge a channel responds to there (a facenet-mtl trained on synthetic eyeglasses puts 2-19% of
  its Grad-CAM mass on a band around the eyes covering 10% of the crop, and 55-67% of its
  HiResCAM mass; tests/explain/test_saliency.py).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from pytorch_grad_cam import GradCAM, HiResCAM
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from torch import nn

from faceattr.explain.feature_maps import conv_stages
from faceattr.faces.images import array_to_rgb
from faceattr.models import AttributeModel
from faceattr.models.base import binary_logits


class AttributeTarget:
    """A Grad-CAM target: ``attribute``'s score in one sample's raw outputs of ``model``
    (``(W,)`` for sigmoid heads, ``(K, 2)`` for softmax2 heads): a binary attribute's logit, a
    categorical one's largest class logit, a numeric one's expected value."""

    def __init__(self, model: AttributeModel, attribute: str) -> None:
        self.index = attribute_index(model, attribute)
        self.attribute = model.schema.attributes[self.index]
        self.layout = model.layout
        self.head_type = model.head_type

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        """The score, a scalar with its graph."""
        outputs = binary_logits(output[None], self.head_type)
        if self.attribute.kind == "numeric":
            return self.layout.decode(outputs)[self.attribute.name][0]
        logits = self.layout.split(outputs)[self.index][0]
        return logits if self.attribute.kind == "binary" else logits.max()


def saliency_layer(model: AttributeModel) -> nn.Module:
    """The layer Grad-CAM reads: the output of the backbone's last convolutional stage."""
    return conv_stages(model)[-1].module


def cam_method(model: AttributeModel) -> type[BaseCAM]:
    """HiResCAM for flattening trunks (``model.fixed_size``), Grad-CAM for pooled backbones."""
    return HiResCAM if model.fixed_size else GradCAM


def attribute_index(model: AttributeModel, attribute: str) -> int:
    """Position of ``attribute`` among the model's outputs; ``KeyError`` naming the known ones."""
    if attribute not in model.attributes:
        raise KeyError(
            f"the model has no attribute {attribute!r}; it predicts: {', '.join(model.attributes)}"
        )
    return model.attributes.index(attribute)


def saliency_maps(model: AttributeModel, inputs: torch.Tensor, attribute: str) -> np.ndarray:
    """Heatmaps ``(N, H, W)`` float32 in [0, 1] of ``attribute`` for the normalised batch
    ``inputs`` ``(N, C, H, W)``, at the input's resolution: the class activation map of
    :func:`cam_method` for :class:`AttributeTarget`, each scaled to its own maximum (all zero
    where nothing speaks for the attribute). Leaves the model in eval mode."""
    target = AttributeTarget(model, attribute)
    cam = cam_method(model)(model, [saliency_layer(model)])
    # An input that needs gradients keeps the graph alive even where parameters are frozen.
    leaf = inputs.detach().requires_grad_(True)
    try:
        with torch.enable_grad():
            heatmaps: np.ndarray = cam(leaf, targets=[target] * len(inputs))
    finally:
        cam.activations_and_grads.release()
        model.zero_grad(set_to_none=True)
    return heatmaps.astype(np.float32)


def overlay_heatmap(face: np.ndarray, heatmap: np.ndarray, weight: float = 0.5) -> np.ndarray:
    """The ``heatmap`` (``(h, w)`` in [0, 1], resized to the face) in the jet colour map over
    ``face`` (uint8 grey or RGB, see :func:`~faceattr.faces.images.array_to_rgb`), the face
    weighing ``weight``: uint8 ``(H, W, 3)``."""
    rgb = array_to_rgb(face)
    height, width = rgb.shape[:2]
    mask = cv2.resize(np.clip(heatmap, 0, 1).astype(np.float32), (width, height))
    overlaid: np.ndarray = show_cam_on_image(
        rgb.astype(np.float32) / 255.0, mask, use_rgb=True, image_weight=weight
    )
    return overlaid

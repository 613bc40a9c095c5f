"""See inside a model: feature maps after each convolutional stage, per-attribute saliency over
the face, and one HTML page per image (``faceattr explain``)."""

from faceattr.explain.explain import explain_image
from faceattr.explain.feature_maps import capture_feature_maps, conv_stages, feature_grid
from faceattr.explain.results import Explanation, FaceExplanation
from faceattr.explain.saliency import overlay_heatmap, saliency_maps

__all__ = [
    "Explanation",
    "FaceExplanation",
    "capture_feature_maps",
    "conv_stages",
    "explain_image",
    "feature_grid",
    "overlay_heatmap",
    "saliency_maps",
]

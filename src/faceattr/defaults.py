"""Defaults that the command line shows in its options: they live here, in a module that imports
nothing, so that ``faceattr --help`` does not load PyTorch; the modules using them import them."""

DEFAULT_SIZE = 288
"""Side of the packed image cache's square crops, in pixels (``faceattr data prepare``)."""
DEFAULT_MARGIN = 1.25
"""With the AFFACT box (5.5 eye-to-mouth distances, ~225 px on CelebA's aligned 178x218 images),
a margin of 1.25 holds the whole aligned image at about one cache pixel per source pixel at 288;
what AFFACT jitter reaches beyond it is border extrapolation, in the source as in the cache."""
PROTOCOLS = ("A", "C", "D", "T")
"""Seed 003's test sets (``faceattr data protocols``, ``faceattr evaluate``)."""
DEFAULT_OPSET = 18
"""ONNX opset of ``faceattr export``."""

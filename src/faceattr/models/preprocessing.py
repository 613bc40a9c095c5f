"""Images -> the normalised batch a model expects, following its :class:`InputConfig`.

This is the plain per-image path (prediction on a few photos, tests); training batches come from
the packed cache and are normalised on the device with :meth:`InputConfig.normalize`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from faceattr.models.base import InputConfig


def to_model_input(images: Sequence[Image.Image | np.ndarray], config: InputConfig) -> torch.Tensor:
    """Resize (bilinear) each image to ``config.size``, convert it to grayscale or RGB, scale to
    [0, 1] and normalise: a float batch ``(N, channels, H, W)``. Arrays are ``(H, W)`` or
    ``(H, W, 3)`` uint8."""
    if len(images) == 0:
        raise ValueError("no images to preprocess")
    height, width = config.size
    mode = "L" if config.grayscale else "RGB"
    batch = []
    for image in images:
        pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        pil = pil.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
        if config.grayscale and config.channels == 3:
            pil = pil.convert("RGB")
        pixels = np.asarray(pil, dtype=np.float32) / 255.0
        batch.append(pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1))
    return config.normalize(torch.from_numpy(np.stack(batch)))

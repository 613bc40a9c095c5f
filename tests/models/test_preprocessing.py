"""Images -> the batch a model's InputConfig asks for."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from faceattr.models import InputConfig, create_model
from faceattr.models.preprocessing import to_model_input


def test_grayscale_model_input() -> None:
    red = np.zeros((20, 10, 3), np.uint8)
    red[..., 0] = 255
    config = create_model("facenet-mtl").input_config
    batch = to_model_input([red, Image.fromarray(red)], config)
    assert batch.shape == (2, 1, 36, 36)
    luma = round(255 * 299 / 1000) / 255  # PIL's ITU-R 601-2 luma of pure red
    assert torch.allclose(batch, torch.full_like(batch, luma), atol=1e-6)


def test_rgb_input_is_normalised_per_channel() -> None:
    config = InputConfig(size=(4, 6), mean=(0.5, 0.5, 0.5), std=(0.25, 0.5, 1.0))
    white = np.full((8, 8, 3), 255, np.uint8)
    batch = to_model_input([white], config)
    assert batch.shape == (1, 3, 4, 6)
    assert batch[0, :, 0, 0].tolist() == [2.0, 1.0, 0.5]
    with pytest.raises(ValueError, match="no images"):
        to_model_input([], config)

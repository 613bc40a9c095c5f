"""Batched 2x3 affine matrices: composition, inversion and point mapping.

Every matrix maps SOURCE pixel coordinates to OUTPUT pixel coordinates: x to the right, y down,
pixel centres at integer coordinates (pixel ``i`` covers ``[i - 0.5, i + 0.5]``). A batch is an
``(N, 2, 3)`` array; ``[A | t]`` maps a point ``p`` to ``A @ p + t``. The functions here accept
numpy arrays or torch tensors (on any device) and return the same kind they were given.
"""

from __future__ import annotations

from typing import TypeVar, cast

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)
Size = int | tuple[int, int]
"""An output size: ``S`` for a square, or ``(height, width)``."""


def as_hw(size: Size) -> tuple[int, int]:
    """``(height, width)`` of a size given as an int (square) or a ``(height, width)`` pair."""
    height, width = (size, size) if isinstance(size, int) else size
    if height <= 0 or width <= 0:
        raise ValueError(f"output size must be positive, got {size!r}")
    return int(height), int(width)


def _tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(torch.float64)
    return torch.from_numpy(np.asarray(x, np.float64))


def _like(result: torch.Tensor, like: Array) -> Array:
    if isinstance(like, torch.Tensor):
        return cast(Array, result)
    return cast(Array, result.numpy())


def _check_matrices(m: torch.Tensor, name: str) -> None:
    if m.ndim != 3 or m.shape[1:] != (2, 3):
        raise ValueError(f"{name} must have shape (N, 2, 3), got {tuple(m.shape)}")


def compose(outer: Array, inner: Array) -> Array:
    """The ``(N, 2, 3)`` matrices applying ``inner`` first, then ``outer``."""
    a = _tensor(outer)
    b = _tensor(inner).to(a.device)
    _check_matrices(a, "outer")
    _check_matrices(b, "inner")
    linear = a[:, :, :2] @ b[:, :, :2]
    translation = a[:, :, :2] @ b[:, :, 2:] + a[:, :, 2:]
    return _like(torch.cat([linear, translation], dim=2), outer)


def invert(matrices: Array) -> Array:
    """The inverse maps (output -> source) of ``(N, 2, 3)`` affine matrices."""
    m = _tensor(matrices)
    _check_matrices(m, "matrices")
    inverse_linear = torch.linalg.inv(m[:, :, :2])
    translation = -inverse_linear @ m[:, :, 2:]
    return _like(torch.cat([inverse_linear, translation], dim=2), matrices)


def transform_points(matrices: Array, points: Array) -> Array:
    """Map ``(N, K, 2)`` points through ``(N, 2, 3)`` matrices (one matrix per row of points)."""
    m = _tensor(matrices)
    p = _tensor(points).to(m.device)
    _check_matrices(m, "matrices")
    if p.ndim != 3 or p.shape[2] != 2 or p.shape[0] != m.shape[0]:
        raise ValueError(f"points must have shape ({m.shape[0]}, K, 2), got {tuple(p.shape)}")
    mapped = p @ m[:, :, :2].transpose(1, 2) + m[:, None, :, 2]
    return _like(mapped, points)


def similarity_matrix(
    center: np.ndarray, scale: np.ndarray, angle: np.ndarray, out_size: Size
) -> np.ndarray:
    """Matrices rotating by ``-angle`` about ``center``, scaling, and putting it mid-crop.

    ``center`` is ``(N, 2)`` source pixels, ``scale`` ``(N,)`` output pixels per source pixel,
    ``angle`` ``(N,)`` radians (the source direction ``(cos a, sin a)`` becomes the output x axis).
    The centre lands on the crop centre ``((W - 1) / 2, (H - 1) / 2)``.
    """
    height, width = as_hw(out_size)
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    linear = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], axis=1)
    crop_centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    translation = crop_centre - np.einsum("nij,nj->ni", linear, center)
    return np.concatenate([linear, translation[:, :, None]], axis=2)


def matrix_scale(matrices: np.ndarray) -> float:
    """The mean linear scale (square root of the determinant) of ``(N, 2, 3)`` matrices."""
    return float(np.sqrt(np.abs(np.linalg.det(np.asarray(matrices)[:, :, :2]))).mean())

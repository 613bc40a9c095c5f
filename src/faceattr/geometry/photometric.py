"""Per-image photometric changes for whole batches: Gaussian blur, gamma, colour temperature.

Images are float ``(N, C, H, W)`` tensors in [0, 1] on any device; each image has its own value.
"""

from __future__ import annotations

import math

import torch

KELVIN_RGB = {
    1000: (255, 56, 0),
    1500: (255, 109, 0),
    2000: (255, 137, 18),
    2500: (255, 161, 72),
    3000: (255, 180, 107),
    3500: (255, 196, 137),
    4000: (255, 209, 163),
    4500: (255, 219, 186),
    5000: (255, 228, 206),
    5500: (255, 236, 224),
    6000: (255, 243, 239),
    6500: (255, 249, 253),
    7000: (245, 243, 255),
    7500: (235, 238, 255),
    8000: (227, 233, 255),
    8500: (220, 229, 255),
    9000: (214, 225, 255),
    9500: (208, 222, 255),
    10000: (204, 219, 255),
}
"""Black-body white points (Mitchell Charity's table), the conversion used by seed 003's
colour-temperature transform (section 7.6): each channel is multiplied by ``value / 255``."""

BLUR_TRUNCATE = 3.0
"""Gaussian kernels reach ``int(3 sigma)`` pixels each side, as the reference's do."""
BAND_BLOCK = 56
"""Output pixels per block of the banded blur products (smaller: less work, more calls)."""


def kelvin_gains(kelvin: torch.Tensor) -> torch.Tensor:
    """``(N, 3)`` RGB gains for ``(N,)`` temperatures, linear between the table's 500 K steps."""
    table_kelvin = torch.tensor(list(KELVIN_RGB), dtype=torch.float64, device=kelvin.device)
    table_rgb = torch.tensor(list(KELVIN_RGB.values()), dtype=torch.float64, device=kelvin.device)
    k = kelvin.to(torch.float64).clamp(float(table_kelvin[0]), float(table_kelvin[-1]))
    upper = torch.searchsorted(table_kelvin, k).clamp(1, len(table_kelvin) - 1)
    low_k, high_k = table_kelvin[upper - 1], table_kelvin[upper]
    weight = ((k - low_k) / (high_k - low_k))[:, None]
    return ((1 - weight) * table_rgb[upper - 1] + weight * table_rgb[upper]) / 255.0


def gaussian_matrices(
    sigma: torch.Tensor, length: int, gain: float = 1.0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """``(N, L, L)`` matrices ``G`` with ``G @ signal`` a Gaussian blur of each length-L signal.

    Kernels are truncated at ``int(BLUR_TRUNCATE * sigma)`` and normalised to ``gain``; taps
    beyond the ends read the end sample (replicate border). ``sigma == 0`` gives the identity.
    """
    n = sigma.shape[0]
    sigma = sigma.to(torch.float64)
    radius = (BLUR_TRUNCATE * sigma).floor()
    reach = int(radius.max().item()) if n else 0
    offsets = torch.arange(-reach, reach + 1, device=sigma.device, dtype=torch.float64)
    weights = torch.exp(-0.5 * (offsets / sigma.clamp_min(1e-6)[:, None]) ** 2)
    weights = torch.where(offsets.abs() <= radius[:, None], weights, 0.0)
    weights = weights * (gain / weights.sum(dim=1, keepdim=True))
    positions = torch.arange(length, device=sigma.device)
    taps = (positions[:, None] + offsets.long()[None, :]).clamp(0, length - 1)
    matrices = torch.zeros(n, length, length, device=sigma.device, dtype=dtype)
    shape = (n, length, taps.shape[1])
    return matrices.scatter_add_(2, taps.expand(shape), weights.to(dtype)[:, None, :].expand(shape))


def _band_blocks(length: int, reach: int) -> list[tuple[int, int, int, int]]:
    """Output blocks ``[a, b)`` with the input span ``[lo, hi)`` a banded matrix reads for them."""
    return [
        (a, min(a + BAND_BLOCK, length), max(a - reach, 0), min(a + BAND_BLOCK + reach, length))
        for a in range(0, length, BAND_BLOCK)
    ]


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
    """Blur each image of a float batch with its own sigma (pixels), separably.

    Each axis is a product with the banded ``gaussian_matrices``, done block by block so only
    the band is multiplied. ``gain`` scales the result at no cost (``1 / 255`` turns 0-255
    values into [0, 1]).
    """
    n, c, h, w = images.shape
    sigma = sigma.to(images.device)
    reach = int((BLUR_TRUNCATE * sigma).floor().max().item()) if n else 0
    if reach == 0:
        return images * gain
    rows = gaussian_matrices(sigma, h, gain, images.dtype)
    cols = gaussian_matrices(sigma, w, dtype=images.dtype).transpose(1, 2)
    vertical = torch.empty_like(images)
    for a, b, lo, hi in _band_blocks(h, reach):
        block = rows[:, None, a:b, lo:hi].expand(n, c, b - a, hi - lo).reshape(n * c, b - a, -1)
        source = images[:, :, lo:hi].reshape(n * c, hi - lo, w)
        torch.bmm(block, source, out=vertical[:, :, a:b].view(n * c, b - a, w))
    flat = vertical.view(n, c * h, w)
    blurred = torch.empty_like(flat)
    for a, b, lo, hi in _band_blocks(w, reach):
        torch.bmm(flat[:, :, lo:hi], cols[:, lo:hi, a:b], out=blurred[:, :, a:b])
    return blurred.view(n, c, h, w)


def adjust_gamma(images: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """``image ** gamma`` per image (values must be >= 0), as the reference's gamma jitter."""
    exponent = gamma.to(device=images.device, dtype=images.dtype).view(-1, 1, 1, 1)
    return torch.log(images).mul_(exponent / math.log(2.0)).exp2_()


def apply_channel_gains(images: torch.Tensor, gains: torch.Tensor) -> torch.Tensor:
    """Multiply each image's channels by its ``(N, C)`` gains (e.g. ``kelvin_gains``)."""
    gains = gains.to(device=images.device, dtype=images.dtype)
    return images * gains.view(gains.shape[0], gains.shape[1], 1, 1)

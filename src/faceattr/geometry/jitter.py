"""AFFACT jitter (seed 003, Algorithm 2 and section 7.6): configuration, sampling, matrices."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from faceattr.geometry.affine import Size, as_hw
from faceattr.geometry.photometric import kelvin_gains

REFERENCE_CROP = 224
"""Crop side at which ``AffactJitter.blur_sigma`` is given in pixels (the seed's crop size)."""


@dataclass(frozen=True)
class AffactJitter:
    """Random perturbations of an aligned face; each has an on/off switch.

    Defaults are seed 003's AFFACT values (Algorithm 2); the colour temperature of section 7.6
    (AFFACT-Ext) is off by default.
    """

    scale_enabled: bool = True
    scale_sigma: float = 0.1
    """The scale factor is ``2 ** N(0, scale_sigma)``."""
    rotation_enabled: bool = True
    rotation_sigma: float = 20.0
    """Rotation in degrees, ``N(0, rotation_sigma)``."""
    shift_enabled: bool = True
    shift_sigma: float = 0.05
    """Shift of the crop centre, ``N(0, shift_sigma)`` times the crop width (x) and height (y)."""
    mirror_enabled: bool = True
    mirror_p: float = 0.5
    """Probability of a horizontal flip."""
    blur_enabled: bool = True
    blur_sigma: float = 3.0
    """Gaussian blur sigma ``|N(0, blur_sigma)|`` in pixels of a ``REFERENCE_CROP`` crop; scaled
    with the crop's shorter side, so a 112 crop gets half the pixels and the same look."""
    gamma_enabled: bool = True
    gamma_sigma: float = 1.0
    """Gamma ``2 ** N(0, gamma_sigma)``, applied as ``value ** gamma`` on [0, 1]."""
    temperature_enabled: bool = False
    temperature_min: float = 1000.0
    temperature_max: float = 10000.0
    """Colour temperature in Kelvin, uniform in ``[temperature_min, temperature_max]``."""

    def __post_init__(self) -> None:
        sigmas = {
            "scale_sigma": self.scale_sigma,
            "rotation_sigma": self.rotation_sigma,
            "shift_sigma": self.shift_sigma,
            "blur_sigma": self.blur_sigma,
            "gamma_sigma": self.gamma_sigma,
        }
        for name, value in sigmas.items():
            if value < 0:
                raise ValueError(f"AffactJitter.{name} must be >= 0, got {value}")
        if not 0.0 <= self.mirror_p <= 1.0:
            raise ValueError(f"AffactJitter.mirror_p must be in [0, 1], got {self.mirror_p}")
        if not 0 < self.temperature_min <= self.temperature_max:
            raise ValueError(
                "AffactJitter needs 0 < temperature_min <= temperature_max, got "
                f"{self.temperature_min}, {self.temperature_max}"
            )

    @classmethod
    def off(cls) -> AffactJitter:
        """Every perturbation switched off: the plain alignment."""
        return cls(
            scale_enabled=False,
            rotation_enabled=False,
            shift_enabled=False,
            mirror_enabled=False,
            blur_enabled=False,
            gamma_enabled=False,
            temperature_enabled=False,
        )


@dataclass(frozen=True)
class JitterParams:
    """One drawn perturbation per image, as ``(N, ...)`` tensors on the generator's device."""

    scale: torch.Tensor
    """``(N,)`` scale factors."""
    angle: torch.Tensor
    """``(N,)`` rotations in degrees (positive turns the face clockwise on screen)."""
    shift: torch.Tensor
    """``(N, 2)`` crop-centre shifts in output pixels (x, y)."""
    mirror: torch.Tensor
    """``(N,)`` bool, flip horizontally."""
    blur_sigma: torch.Tensor
    """``(N,)`` Gaussian sigmas in output pixels (0: no blur)."""
    gamma: torch.Tensor
    """``(N,)`` gamma exponents."""
    channel_gain: torch.Tensor
    """``(N, 3)`` RGB multipliers of the colour temperature (ones: unchanged)."""

    def __len__(self) -> int:
        return int(self.scale.shape[0])


def sample_jitter(
    n: int, cfg: AffactJitter, out_size: Size, generator: torch.Generator | None = None
) -> JitterParams:
    """Draw ``n`` perturbations for crops of ``out_size`` from ``generator``.

    Every quantity is drawn whether or not it is enabled (disabled ones are then set to the
    identity), so switching one perturbation off leaves the others' draws unchanged.
    """
    height, width = as_hw(out_size)
    device = generator.device if generator is not None else torch.device("cpu")

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, device=device, dtype=torch.float64)

    def uniform(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator, device=device, dtype=torch.float64)

    scale, angle, shift = normal(n), normal(n), normal(n, 2)
    mirror, blur, gamma, kelvin = uniform(n), normal(n), normal(n), uniform(n)
    crop = torch.tensor([width, height], dtype=torch.float64, device=device)
    blur_pixels = cfg.blur_sigma * min(height, width) / REFERENCE_CROP
    temperature = cfg.temperature_min + (cfg.temperature_max - cfg.temperature_min) * kelvin
    ones = torch.ones(n, dtype=torch.float64, device=device)
    return JitterParams(
        scale=torch.exp2(cfg.scale_sigma * scale) if cfg.scale_enabled else ones,
        angle=cfg.rotation_sigma * angle if cfg.rotation_enabled else 0 * ones,
        shift=cfg.shift_sigma * shift * crop if cfg.shift_enabled else 0 * shift,
        mirror=mirror < cfg.mirror_p if cfg.mirror_enabled else ones < 0,
        blur_sigma=(blur_pixels * blur).abs() if cfg.blur_enabled else 0 * ones,
        gamma=torch.exp2(cfg.gamma_sigma * gamma) if cfg.gamma_enabled else ones,
        channel_gain=kelvin_gains(temperature)
        if cfg.temperature_enabled
        else ones[:, None].repeat(1, 3),
    )


def jitter_matrix(params: JitterParams, out_size: Size) -> torch.Tensor:
    """``(N, 2, 3)`` float64 matrices perturbing an aligned crop, in output pixel coordinates.

    About the crop centre ``o``: ``q -> scale * R(angle) (q - o) + o + shift``, then the optional
    mirror ``x -> (W - 1) - x``. Compose with the alignment: ``compose(jitter, alignment)``.
    """
    height, width = as_hw(out_size)
    radians = params.angle * (math.pi / 180.0)
    cos, sin = torch.cos(radians) * params.scale, torch.sin(radians) * params.scale
    centre = torch.tensor([(width - 1) / 2.0, (height - 1) / 2.0], dtype=torch.float64)
    centre = centre.to(params.scale.device)
    linear = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], dim=1)
    translation = centre + params.shift - (linear @ centre[:, None])[..., 0]
    flip = torch.where(params.mirror, -1.0, 1.0).to(torch.float64)
    linear = linear * torch.stack([flip, torch.ones_like(flip)], -1)[:, :, None]
    translation[:, 0] = torch.where(
        params.mirror, (width - 1) - translation[:, 0], translation[:, 0]
    )
    return torch.cat([linear, translation[:, :, None]], dim=2)

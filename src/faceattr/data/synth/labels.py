"""Label vectors that follow CelebA's frequencies and pairwise correlations (a Gaussian copula).

A latent normal vector with CelebA's tetrachoric correlation matrix (projected to the nearest
positive-definite correlation matrix) is thresholded at each attribute's real frequency. Images of
one identity share the latent values of the identity attributes (sex, age, skin, hair, face shape)
exactly and those of the per-image attributes (expression, accessories, make-up) in part, while
every image on its own still follows the same joint distribution.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.special import ndtri

from faceattr.attributes import ATTRIBUTES, attribute_indices
from faceattr.data.synth.label_stats import LabelStats, load_label_stats
from faceattr.data.synth.render import resolve_labels

# Attributes fixed for an identity: every image of one person carries the same value.
IDENTITY_ATTRIBUTES: tuple[str, ...] = (
    "Male",
    "Young",
    "Pale_Skin",
    "Black_Hair",
    "Blond_Hair",
    "Brown_Hair",
    "Gray_Hair",
    "Bald",
    "Receding_Hairline",
    "Straight_Hair",
    "Wavy_Hair",
    "Big_Nose",
    "Pointy_Nose",
    "Oval_Face",
    "Chubby",
    "Double_Chin",
    "Big_Lips",
    "Bushy_Eyebrows",
    "Arched_Eyebrows",
    "Attractive",
)

# Label noise: each attribute's minority-class labels flip with this probability and as many
# majority-class labels flip the other way, so frequencies are kept; over CelebA's 40 frequencies
# that is 2 * 0.08 * mean(min(p, 1 - p)) = 3.1% of all labels.
MINORITY_FLIP_RATE = 0.08


def nearest_correlation(a: np.ndarray, iterations: int = 100, floor: float = 1e-3) -> np.ndarray:
    """The nearest correlation matrix to symmetric ``a`` with eigenvalues >= ``floor`` (Higham)."""
    y = a.copy()
    correction = np.zeros_like(a)
    for _ in range(iterations):
        r = y - correction
        w, v = np.linalg.eigh(r)
        x = (v * np.maximum(w, floor)) @ v.T
        correction = x - r
        y = x.copy()
        np.fill_diagonal(y, 1.0)
    w, v = np.linalg.eigh(y)
    y = (v * np.maximum(w, floor)) @ v.T
    d = np.sqrt(np.diag(y))
    return y / np.outer(d, d)


@dataclass(frozen=True, eq=False)
class LabelModel:
    """A Gaussian copula over binary labels: ``label = z > t`` with ``z ~ N(0, correlation)``."""

    names: tuple[str, ...]
    frequency: np.ndarray  # (K,) positive rate of each sampled label
    correlation: np.ndarray  # (K, K) positive definite

    @property
    def thresholds(self) -> np.ndarray:
        """Latent thresholds, (K,): a label is 1 where its latent normal exceeds them."""
        return ndtri(1.0 - np.clip(self.frequency, 1e-9, 1 - 1e-9))

    @classmethod
    def from_stats(cls, stats: LabelStats) -> LabelModel:
        """The copula reproducing ``stats``' frequencies and (as far as possible) correlations."""
        return cls(stats.names, stats.frequency, nearest_correlation(stats.tetrachoric))

    def calibrated(
        self,
        transform: Callable[[np.ndarray], np.ndarray],
        target: np.ndarray,
        samples: int = 40_000,
        iterations: int = 8,
    ) -> LabelModel:
        """This copula with frequencies moved so that ``transform``-ed samples (e.g. labels after
        :func:`~faceattr.data.synth.render.resolve_labels`) have positive rates ``target``.

        Fixed-point iteration on the log-odds over one fixed set of latent samples (deterministic).
        """
        z = np.random.default_rng(0).standard_normal((samples, len(self.names)))
        z = z @ np.linalg.cholesky(self.correlation).T
        target = np.clip(target, 1e-4, 1 - 1e-4)
        model = self
        for _ in range(iterations):
            got = np.clip(
                transform((z > model.thresholds).astype(np.uint8)).mean(axis=0), 1e-4, 1 - 1e-4
            )
            logit = np.log(model.frequency / (1 - model.frequency))
            logit += np.log(target / (1 - target)) - np.log(got / (1 - got))
            model = LabelModel(self.names, 1 / (1 + np.exp(-logit)), self.correlation)
        return model


@cache
def celeba_label_model() -> LabelModel:
    """The copula fitted to CelebA's official labels (the shipped statistics), calibrated so that
    the labels the renderer can draw (:func:`resolve_labels`) keep CelebA's frequencies."""
    stats = load_label_stats()
    if stats.names != ATTRIBUTES:
        raise ValueError("shipped label statistics do not list faceattr.ATTRIBUTES in order")
    return LabelModel.from_stats(stats).calibrated(resolve_labels, stats.frequency)


def sample_labels(n: int, rng: np.random.Generator, model: LabelModel | None = None) -> np.ndarray:
    """``n`` independent label vectors, (n, K) uint8, distributed like CelebA's images."""
    model = model or celeba_label_model()
    z = rng.standard_normal((n, len(model.names))) @ np.linalg.cholesky(model.correlation).T
    return (z > model.thresholds).astype(np.uint8)


def sample_identity_labels(
    sizes: np.ndarray,
    rng: np.random.Generator,
    model: LabelModel | None = None,
    persistence: float = 0.5,
) -> np.ndarray:
    """Label vectors for identities of ``sizes`` images, rows grouped by identity, (sum, K) uint8.

    :data:`IDENTITY_ATTRIBUTES` are equal within an identity; the others are drawn from their
    conditional distribution given those, with a noise shared within the identity in proportion
    ``persistence`` (0: independent images, 1: identical ones).
    """
    model = model or celeba_label_model()
    fixed = np.array(attribute_indices(IDENTITY_ATTRIBUTES))
    varying = np.setdiff1d(np.arange(len(model.names)), fixed)
    c = model.correlation
    c_ff, c_vf = c[np.ix_(fixed, fixed)], c[np.ix_(varying, fixed)]
    gain = np.linalg.solve(c_ff, c_vf.T).T  # E[z_v | z_f] = gain @ z_f
    residual = np.linalg.cholesky(c[np.ix_(varying, varying)] - gain @ c_vf.T)

    sizes = np.asarray(sizes, dtype=np.int64)
    owner = np.repeat(np.arange(len(sizes)), sizes)
    z_fixed = rng.standard_normal((len(sizes), len(fixed))) @ np.linalg.cholesky(c_ff).T
    shared = rng.standard_normal((len(sizes), len(varying)))
    own = rng.standard_normal((len(owner), len(varying)))
    noise = np.sqrt(persistence) * shared[owner] + np.sqrt(1.0 - persistence) * own
    z = np.empty((len(owner), len(model.names)))
    z[:, fixed] = z_fixed[owner]
    z[:, varying] = z_fixed[owner] @ gain.T + noise @ residual.T
    return (z > model.thresholds).astype(np.uint8)


def add_label_noise(
    labels: np.ndarray,
    frequency: np.ndarray,
    rng: np.random.Generator,
    minority_flip: float = MINORITY_FLIP_RATE,
) -> np.ndarray:
    """``labels`` with annotation noise that keeps each attribute's expected frequency.

    Where ``frequency`` (the attribute's positive rate) is p <= 0.5, positives flip with
    probability ``minority_flip`` and negatives with ``minority_flip * p / (1 - p)``; mirrored above
    0.5.
    """
    p = np.clip(frequency, 1e-6, 1 - 1e-6)
    minority = np.minimum(p, 1 - p)
    majority_flip = minority_flip * minority / (1 - minority)
    positive_is_minority = p <= 0.5
    flip_positive = np.where(positive_is_minority, minority_flip, majority_flip)
    flip_negative = np.where(positive_is_minority, majority_flip, minority_flip)
    rate = np.where(labels == 1, flip_positive, flip_negative)
    flips = rng.random(labels.shape) < rate
    return (labels ^ flips).astype(np.uint8)

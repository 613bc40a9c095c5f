"""CelebA's label statistics (frequencies, phi and tetrachoric correlations), computed and shipped.

The shipped table ``celeba_label_stats.json`` was computed once from the official
``list_attr_celeba.txt`` (202,599 images) with::

    python -m faceattr.data.synth.label_stats /path/to/list_attr_celeba.txt
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.special import ndtr, ndtri, owens_t

from faceattr.data.formats import AttributeTable, read_attributes

STATS_FILE = "celeba_label_stats.json"
_DECIMALS = 6
_RHO_LIMIT = 0.999


@dataclass(frozen=True)
class LabelStats:
    """Per-attribute frequencies and pairwise correlations of a binary label matrix."""

    names: tuple[str, ...]
    count: int  # images the statistics were computed from
    frequency: np.ndarray  # (K,) float64, fraction of positives
    phi: np.ndarray  # (K, K) float64, Pearson correlation of the 0/1 labels
    tetrachoric: np.ndarray  # (K, K) float64, latent Gaussian correlation (diagonal 1)

    def to_json(self) -> str:
        """The statistics as JSON, values rounded to 6 decimals."""

        def rounded(a: np.ndarray) -> list:
            return np.round(a, _DECIMALS).tolist()

        return json.dumps(
            {
                "count": self.count,
                "names": list(self.names),
                "frequency": rounded(self.frequency),
                "phi": rounded(self.phi),
                "tetrachoric": rounded(self.tetrachoric),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> LabelStats:
        """Statistics from the JSON written by :meth:`to_json`."""
        d = json.loads(text)
        return cls(
            names=tuple(d["names"]),
            count=int(d["count"]),
            frequency=np.asarray(d["frequency"], dtype=np.float64),
            phi=np.asarray(d["phi"], dtype=np.float64),
            tetrachoric=np.asarray(d["tetrachoric"], dtype=np.float64),
        )


def bivariate_normal_cdf(h: np.ndarray, k: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """P(X <= h, Y <= k) for standard normals with correlation ``rho`` (Owen's T; h, k != 0)."""
    s = np.sqrt(1.0 - rho * rho)
    beta = np.where(h * k < 0, 0.5, 0.0)
    return (
        0.5 * (ndtr(h) + ndtr(k))
        - owens_t(h, (k - rho * h) / (h * s))
        - owens_t(k, (h - rho * k) / (k * s))
        - beta
    )


def tetrachoric(frequency: np.ndarray, both: np.ndarray, iterations: int = 60) -> np.ndarray:
    """Latent Gaussian correlations reproducing the joint positive rates ``both`` (K, K).

    Solves ``P(Z_i > t_i, Z_j > t_j) = both[i, j]`` with ``t = Phi^-1(1 - frequency)`` by a
    vectorised bisection on ``rho`` in [-0.999, 0.999]; pairs that never (or always) co-occur
    land on the limits.
    """
    h = ndtri(np.clip(frequency, 1e-9, 1 - 1e-9))  # P(Z > t) = P(-Z <= h)
    hi_, hj_ = np.meshgrid(h, h, indexing="ij")
    lo = np.full(both.shape, -_RHO_LIMIT)
    hi = np.full(both.shape, _RHO_LIMIT)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        too_low = bivariate_normal_cdf(hi_, hj_, mid) < both
        lo = np.where(too_low, mid, lo)
        hi = np.where(too_low, hi, mid)
    rho = 0.5 * (lo + hi)
    rho = 0.5 * (rho + rho.T)
    np.fill_diagonal(rho, 1.0)
    return rho


def compute_label_stats(table: AttributeTable) -> LabelStats:
    """Frequencies, phi and tetrachoric correlations of ``table``'s labels."""
    x = table.labels.astype(np.float64)
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 label rows to compute statistics, got {n}")
    frequency = x.mean(axis=0)
    both = (x.T @ x) / n
    cov = both - np.outer(frequency, frequency)
    sd = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = np.nan_to_num(cov / np.outer(sd, sd))
    np.fill_diagonal(phi, 1.0)
    return LabelStats(
        names=tuple(table.names),
        count=n,
        frequency=frequency,
        phi=phi,
        tetrachoric=tetrachoric(frequency, both),
    )


def load_label_stats() -> LabelStats:
    """The statistics of CelebA's 202,599 official labels shipped with the package."""
    text = resources.files(__package__).joinpath(STATS_FILE).read_text(encoding="utf-8")
    return LabelStats.from_json(text)


def main(argv: list[str]) -> None:
    """Recompute the shipped table from an official ``list_attr_celeba.txt``."""
    if len(argv) != 1:
        raise SystemExit("usage: python -m faceattr.data.synth.label_stats LIST_ATTR_CELEBA_TXT")
    stats = compute_label_stats(read_attributes(Path(argv[0])))
    target = Path(__file__).with_name(STATS_FILE)
    target.write_text(stats.to_json() + "\n", encoding="utf-8")
    print(f"wrote {target} ({stats.count:,} images)")


if __name__ == "__main__":
    main(sys.argv[1:])

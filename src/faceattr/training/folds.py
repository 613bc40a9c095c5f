"""Identity-disjoint folds for cross-validation (seed 000's 5-fold CV): every identity lands in
exactly one fold, so no person is both trained on and validated on.

Identities are dealt largest first to the fold holding the fewest images so far (the greedy rule of
scikit-learn's ``GroupKFold``), after a seeded shuffle that breaks ties between identities of the
same size, so the folds differ by at most one identity's images and a seed reproduces them::

    fold_of_row = assign_folds(celeba.identity[rows], folds=5, seed=0)
    held_out = rows[fold_of_row == 2]
"""

from __future__ import annotations

import heapq
import logging

import numpy as np

log = logging.getLogger(__name__)


def assign_folds(identity: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """``(N,)`` fold (``0..folds-1``) of every row of ``identity``, identity-disjoint and balanced
    in images; a negative identity (unknown) makes that row an identity of its own."""
    identity = np.asarray(identity)
    if identity.ndim != 1:
        raise ValueError(f"identity must be one-dimensional, got shape {identity.shape}")
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    groups = identity.astype(np.int64)
    unknown = groups < 0
    if unknown.any():
        log.warning("%d of %d images have no identity: each is its own", unknown.sum(), len(groups))
        groups[unknown] = groups.max(initial=-1) + 1 + np.arange(int(unknown.sum()))
    names, group_of_row, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    if len(names) < folds:
        raise ValueError(f"{folds} folds need at least {folds} identities, got {len(names)}")
    shuffled = np.random.default_rng(seed).permutation(len(names))
    order = shuffled[np.argsort(-sizes[shuffled], kind="stable")]
    lightest = [(0, fold) for fold in range(folds)]
    fold_of_group = np.empty(len(names), dtype=np.int64)
    for group in order:
        load, fold = heapq.heappop(lightest)
        fold_of_group[group] = fold
        heapq.heappush(lightest, (load + int(sizes[group]), fold))
    return fold_of_group[group_of_row]

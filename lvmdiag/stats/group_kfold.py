"""K-fold cross-validation by group (article): no article ever straddles a training and a test fold.

Windows of one article overlap, so a classifier evaluated on windows of articles it was trained on
scores well even when the splits do not differ. Folds here hold whole articles, balanced by row count.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from lvmdiag.errors import InputError
from lvmdiag.stats.resampling import as_rng


def assign_group_folds(
    group_sizes: np.ndarray, n_splits: int = 5, rng: np.random.Generator | int | None = 0
) -> np.ndarray:
    """Fold index (0..n_splits-1) for each group, balancing the total size per fold.

    Groups are shuffled (ties between equal sizes broken at random), then placed largest first into
    the currently smallest fold (the greedy rule of scikit-learn's ``GroupKFold``), so fold sizes
    differ by at most the largest group.

    Parameters
    ----------
    group_sizes : (G,) non-negative row counts per group
    n_splits : number of folds, at least 2 and at most the number of non-empty groups
    rng : seed or generator for the tie-breaking shuffle

    Returns
    -------
    (G,) int64 fold of each group (empty groups get a fold too; they hold no rows).
    """
    sizes = np.asarray(group_sizes, dtype=np.int64)
    n_nonempty = int(np.sum(sizes > 0))
    if n_splits < 2:
        raise InputError(f"n_splits must be >= 2; got {n_splits}.")
    if n_nonempty < n_splits:
        raise InputError(
            f"cross-validation by article needs at least {n_splits} articles (groups); got {n_nonempty}. "
            "Provide article ids or use fewer folds."
        )
    rng = as_rng(rng)
    shuffled = rng.permutation(sizes.size)
    order = shuffled[np.argsort(-sizes[shuffled], kind="stable")]
    fold_of = np.empty(sizes.size, dtype=np.int64)
    load = np.zeros(n_splits, dtype=np.int64)
    for g in order:
        f = int(np.argmin(load))
        fold_of[g] = f
        load[f] += sizes[g]
    return fold_of


def assign_folds_in_turn(split_codes: list[np.ndarray], n_groups: int, n_splits: int,
                         streams: list[np.random.Generator]) -> np.ndarray:
    """Fold of every group for comparisons of split 0 (the reference) with each later split.

    The reference's groups are placed first (the greedy rule of :func:`assign_group_folds`); then each later
    split's groups not yet placed go, largest first (ties at random, from that split's stream), into the
    fold holding the fewest rows of the reference plus that split. A comparison's folds therefore depend
    on the reference and that split (and on groups it shares with an earlier split), never on a split
    added after it. A group in several splits keeps one fold.

    Parameters
    ----------
    split_codes : per split, the (N_s,) group code of each row (codes in 0..n_groups-1)
    n_groups : number of codes
    n_splits : number of folds
    streams : one generator per split (:func:`lvmdiag.stats.resampling.named_stream`)

    Returns
    -------
    (n_groups,) int64 fold of each group (-1 for a code that no row holds).
    """
    if n_splits < 2:
        raise InputError(f"n_splits must be >= 2; got {n_splits}.")
    fold_of = np.full(n_groups, -1, dtype=np.int64)
    ref_sizes = np.bincount(np.asarray(split_codes[0], np.int64).ravel(), minlength=n_groups)
    for i, (codes, rng) in enumerate(zip(split_codes, streams)):
        sizes = np.bincount(np.asarray(codes, np.int64).ravel(), minlength=n_groups)
        in_comparison = sizes + (ref_sizes if i else 0)
        placed = fold_of >= 0
        load = np.bincount(fold_of[placed], weights=in_comparison[placed], minlength=n_splits).astype(np.int64)
        new = np.flatnonzero((sizes > 0) & ~placed)
        shuffled = new[rng.permutation(new.size)]
        for g in shuffled[np.argsort(-sizes[shuffled], kind="stable")]:
            f = int(np.argmin(load))
            fold_of[g] = f
            load[f] += sizes[g]
    return fold_of


class GroupKFold:
    """K-fold iterator over rows with whole groups per fold (scikit-learn style: ``__init__`` stores only).

    Parameters
    ----------
    n_splits : number of folds
    rng : seed or generator breaking ties between groups of equal size
    """

    def __init__(self, n_splits: int = 5, rng: np.random.Generator | int | None = 0) -> None:
        self.n_splits = n_splits
        self.rng = rng

    def row_folds(self, groups: np.ndarray) -> np.ndarray:
        """Fold index of every row given its integer group label."""
        groups = np.asarray(groups)
        uniq, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
        fold_of_group = assign_group_folds(counts, self.n_splits, self.rng)
        return fold_of_group[inverse.ravel()]

    def split(self, X: np.ndarray | None = None, y: np.ndarray | None = None, groups: np.ndarray | None = None
              ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_rows, test_rows)`` index arrays, one pair per fold."""
        if groups is None:
            raise InputError("GroupKFold.split needs `groups` (one article label per row).")
        folds = self.row_folds(groups)
        for f in range(self.n_splits):
            yield np.flatnonzero(folds != f), np.flatnonzero(folds == f)

"""A scikit-learn-shaped splitter: whole groups to splits, window shares matched per stratum.

scikit-learn's ``GroupShuffleSplit`` counts groups, not rows, and ``StratifiedGroupKFold`` has no
ratio parameter. :class:`StratifiedGroupRatioSplit` takes target ratios for any number of splits,
weighs each group by its row count, and stratifies on ``y`` (binned per group).
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from lvmdiag.errors import InputError
from lvmdiag.resplit.assign import Assignment, _ratios_iv, assign_groups
from lvmdiag.resplit.strata import ArticleStats, build_strata


class StratifiedGroupRatioSplit:
    """Split rows into ``len(ratios)`` parts with no group in two parts and row shares near ``ratios``.

    Parameters
    ----------
    ratios : target share of *rows* per split (positive, summing to 1), e.g. (0.8, 0.1, 0.1)
    n_bins : bins per stratification column of ``y`` (numeric columns are binned at per-group quantiles)
    min_articles : strata with fewer groups are pooled (a stratum needs roughly 1/min(ratio) groups)
    random_state : seed for tie-breaking; the same seed gives the same split

    Notes
    -----
    Like scikit-learn splitters, ``__init__`` only stores parameters and ``split`` yields index
    arrays; here it yields once, a tuple with one sorted index array per split. The achieved row
    share of each split is within ``max group size / n rows`` of its ratio (see
    :mod:`lvmdiag.resplit.assign`).
    """

    def __init__(
        self,
        ratios: tuple[float, ...] = (0.8, 0.1, 0.1),
        n_bins: int = 4,
        min_articles: int = 20,
        random_state: int | None = 0,
    ) -> None:
        self.ratios = ratios
        self.n_bins = n_bins
        self.min_articles = min_articles
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:  # noqa: N803
        """Number of splitting iterations (always 1: one partition into ``len(ratios)`` parts)."""
        return 1

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, ...]]:  # noqa: N803
        """Yield one tuple of index arrays, one per split, partitioning ``range(len(X))``.

        Parameters
        ----------
        X : array-like with n rows (only its length is used)
        y : None, or (n,) / (n, m) per-row stratification values; numeric columns are averaged per
            group and quantile-binned, other columns take the group's first value as a category
        groups : (n,) group label per row (required)
        """
        assignment, inverse = self._assign(X, y, groups)
        rows_split = assignment.split_of_group[inverse]
        yield tuple(np.flatnonzero(rows_split == s) for s in range(len(assignment.ratios)))

    def assign(self, X: Any, y: Any = None, groups: Any = None) -> Assignment:  # noqa: N803
        """The :class:`~lvmdiag.resplit.assign.Assignment` behind :meth:`split` (achieved shares, strata)."""
        return self._assign(X, y, groups)[0]

    def _assign(self, X: Any, y: Any, groups: Any) -> tuple[Assignment, np.ndarray]:  # noqa: N803
        n = len(X)
        _ratios_iv(self.ratios)
        if groups is None:
            raise InputError("groups is required: one group (article) label per row.")
        groups = np.asarray(groups)
        if groups.shape != (n,):
            raise InputError(f"groups must have one label per row of X ({n}); got shape {groups.shape}.")
        uniq, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
        sizes = np.bincount(inverse, minlength=uniq.size)
        strata = None
        if y is not None:
            y = np.asarray(y)
            if y.shape[0] != n:
                raise InputError(f"y must have one row per row of X ({n}); got shape {y.shape}.")
            cols = y[:, None] if y.ndim == 1 else y
            columns = {}
            for j in range(cols.shape[1]):
                col = cols[:, j]
                if col.dtype.kind in "iuf":
                    columns[f"y{j}"] = np.bincount(inverse, weights=col.astype(np.float64), minlength=uniq.size) / sizes
                else:
                    columns[f"y{j}"] = col[first]
            stats = ArticleStats(sizes, np.full(uniq.size, np.nan), None, columns)
            strata = build_strata(
                stats, list(columns), n_bins=self.n_bins, min_articles=self.min_articles, rng=self.random_state
            ).codes
        return assign_groups(sizes, self.ratios, strata, rng=self.random_state), inverse

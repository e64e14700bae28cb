"""A linear classifier two-sample test, cross-validated by article, with cheap article permutations.

The classifier is ridge least squares on labels +1 (sample a) / -1 (sample b) with an unpenalised
intercept; with an intercept this direction is Fisher's LDA direction (the total covariance and the
within-class covariance give proportional solutions). Per fold f the normal equations are

    (X_{-f}^T X_{-f} + lambda I) w_f = X_{-f}^T y_{-f},

and only the right-hand side depends on the labels. Labels are constant within an article-in-split
(a "unit"), so X^T y = sum_u y_u S_u with per-unit row sums S_u: one pass over the data collects the
per-fold Gram matrices and the unit sums, and every permutation of whole units is one extra column
of the right-hand side. The out-of-fold scores' mean per sample and their sum of squares are exact
from the same sums (:func:`held_out_auc`), so the observed labels and every permutation are scored
without reading a row again.
"""

from __future__ import annotations

from typing import Any

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.linalg.blas import ssyrk
from scipy.special import ndtr

from lvmdiag.errors import InputError


def augment(x: np.ndarray) -> np.ndarray:
    """Append a column of ones (the intercept) to a (n, P) block, as float32."""
    x = np.asarray(x, dtype=np.float32)
    return np.hstack([x, np.ones((x.shape[0], 1), dtype=np.float32)])


class FoldGrams:
    """Mergeable state: X^T X of the augmented rows of each fold, (F, P+1, P+1) float64.

    Only the upper triangle is accumulated (BLAS ``syrk``: half the flops of a general product);
    :attr:`gram` returns the full symmetric matrices.
    """

    def __init__(self, dim: int, n_folds: int) -> None:
        self._upper = np.zeros((n_folds, dim + 1, dim + 1))

    @property
    def gram(self) -> np.ndarray:
        u = self._upper
        return u + np.triu(u, 1).transpose(0, 2, 1)

    def update(self, x: np.ndarray, fold: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Add a block of rows ``x`` (n, P) whose folds are ``fold`` (n,); row i counts ``weights[i]`` times."""
        xa = augment(x)
        if weights is not None:  # w x xᵀ = (√w x)(√w x)ᵀ, intercept column included
            xa *= np.sqrt(np.asarray(weights, np.float32))[:, None]
        fold = np.asarray(fold)
        if fold.size == 0:
            return
        order = np.argsort(fold, kind="stable")  # each fold's rows contiguous, in their order: no per-fold copies
        xa, fold = xa[order], fold[order]
        cuts = np.r_[0, np.flatnonzero(fold[1:] != fold[:-1]) + 1, fold.size]
        for a, b in zip(cuts[:-1], cuts[1:]):
            # xa[a:b].T is Fortran-ordered (P+1, rows): BLAS reads it in place. ssyrk writes the upper
            # triangle and leaves the lower one zero; float32 product per block, float64 accumulation
            self._upper[fold[a]] += ssyrk(1.0, xa[a:b].T, trans=0)

    def merge(self, other: "FoldGrams") -> "FoldGrams":
        """Sum of two states (shards of the same folds)."""
        out = FoldGrams(self._upper.shape[1] - 1, self._upper.shape[0])
        out._upper = self._upper + other._upper
        return out


@dataclass(frozen=True)
class RidgeFolds:
    """Per-fold ridge weights for every label column: (F, P+1, C); column 0 is the observed labelling."""

    weights: np.ndarray
    penalties: np.ndarray  # (F,) lambda used in each fold


def fit_ridge_folds(
    gram: np.ndarray,
    unit_sums: np.ndarray,
    unit_counts: np.ndarray,
    unit_fold: np.ndarray,
    labels: np.ndarray,
    ridge: float = 1e-2,
    factors: list[tuple[Any, float]] | None = None,
) -> RidgeFolds:
    """Solve the per-fold ridge normal equations for all label columns at once.

    Parameters
    ----------
    gram : (F, P+1, P+1) per-fold Gram matrices of augmented rows (:class:`FoldGrams`)
    unit_sums : (U, P) row sums per unit; unit_counts : (U,) rows per unit
    unit_fold : (U,) fold of each unit (all rows of a unit share its fold)
    labels : (U, C) +1 / -1 labels per unit for each column (observed, then permutations)
    ridge : penalty relative to the mean diagonal of the feature Gram (scale-free), intercept unpenalised
    factors : the folds' factorisations from :func:`fold_factors` (computed here when None)

    Returns
    -------
    RidgeFolds with weights (F, P+1, C).
    """
    n_folds, p1, _ = gram.shape
    if np.any(np.bincount(unit_fold, minlength=n_folds) == 0):
        raise InputError("every cross-validation fold needs at least one article; use fewer folds.")
    sums_aug = np.hstack([np.asarray(unit_sums, np.float64), np.asarray(unit_counts, np.float64)[:, None]])
    factors = fold_factors(gram, ridge) if factors is None else factors
    weights = np.empty((n_folds, p1, labels.shape[1]))
    penalties = np.empty(n_folds)
    labels = np.asarray(labels, dtype=np.float64)
    for f in range(n_folds):
        factor, lam = factors[f]
        train = unit_fold != f
        rhs = sums_aug[train].T @ labels[train]  # (P+1, C): X^T y from unit sums
        weights[f] = cho_solve(factor, rhs)
        penalties[f] = lam
    return RidgeFolds(weights, penalties)


def fold_factors(gram: np.ndarray, ridge: float = 1e-2) -> list[tuple[Any, float]]:
    """Cholesky factor and penalty of each fold's penalised training Gram matrix.

    They depend only on the rows, never on the labels, so one factorisation serves the observed fit
    and every batch of permuted labels (pass them to :func:`fit_ridge_folds` as ``factors``).
    """
    n_folds, p1, _ = gram.shape
    total = gram.sum(axis=0)
    out = []
    for f in range(n_folds):
        a = total - gram[f]
        lam = ridge * float(np.trace(a[:-1, :-1])) / max(p1 - 1, 1) + 1e-12
        a[np.arange(p1 - 1), np.arange(p1 - 1)] += lam
        out.append((cho_factor(a), lam))
    return out


def held_out_auc(weights: np.ndarray, grams: np.ndarray, sums_aug: np.ndarray, counts: np.ndarray,
                 unit_fold: np.ndarray, in_a: np.ndarray) -> np.ndarray:
    """Φ(d/√2) of the out-of-fold scores per label column, from unit sums and per-fold Grams.

    weights (F, P+1, C); grams (F, P+1, P+1) of augmented rows per fold; sums_aug (U, P+1) unit row sums
    with the row count last; counts (U,); unit_fold (U,); in_a (U, C) bool, True for sample a.
    """
    n_cols = weights.shape[2]
    unit_score = np.empty((sums_aug.shape[0], n_cols))  # sum of held-out scores over each unit's rows
    sq = np.zeros(n_cols)
    for f in range(weights.shape[0]):
        rows = unit_fold == f
        unit_score[rows] = sums_aug[rows] @ weights[f]
        sq += np.einsum("pc,pc->c", grams[f] @ weights[f], weights[f])
    counts = np.asarray(counts, np.float64)
    n = counts.sum()
    n_a = counts @ in_a
    n_b = n - n_a
    sum_a = np.einsum("uc,uc->c", unit_score, in_a)
    total = unit_score.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = sum_a / n_a - (total - sum_a) / n_b
        p_a = n_a / n
        within = sq / n - (total / n) ** 2 - p_a * (1.0 - p_a) * diff**2
        d = diff / np.sqrt(np.maximum(within, 1e-300))
    return ndtr(d / np.sqrt(2.0))

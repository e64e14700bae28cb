"""Baselines every run is compared with, scored by the same :func:`lvmdiag.train.evaluate.evaluate`.

- ``copy_last``: predict c_last (the last context vector). Its ``cos_prev`` is 1 by construction; its
  ``cos_next`` is what a model must beat to be better than copying.
- ``mean_context``: predict normalize(mean of the K context vectors).
- ``ridge``: closed-form ridge regression from the flattened K x D context (plus a bias) to the target,
  fitted once on the whole training split, prediction normalised. The penalty is
  ``alpha * trace(X^T X) / p`` (a multiple of the mean eigenvalue, so it is scale-free). Unless an
  alpha is given, it is chosen from ``RIDGE_ALPHAS`` by mean cosine on held-out training rows (whole
  articles when ids are known): a fixed alpha either overfits small data with p = K*D near or above N
  (python_docs fixture: val cos_next 0.32 at alpha 0.1, 0.48 at 10) or over-shrinks large data, and a
  baseline weakened that way would flatter the model.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from lvmdiag.train.evaluate import EvalMetrics, Predictor, evaluate

BASELINES = ("copy_last", "mean_context", "ridge")
RIDGE_ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)
HOLDOUT_SHARE = 0.2


def copy_last(ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predict c_last."""
    q = ctx[:, -1]
    return q, q


def mean_context(ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predict the mean of the context vectors (normalised by the evaluator)."""
    q = ctx.mean(axis=1)
    return q, q


def _normal_equations(contexts: np.ndarray, targets: np.ndarray, rows: np.ndarray | None,
                      block_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """``([X, 1]^T [X, 1], [X, 1]^T T)`` over ``rows`` (all when None), streamed over row blocks."""
    n, k, d = contexts.shape
    p = k * d
    idx = np.arange(n) if rows is None else rows
    gram = np.zeros((p + 1, p + 1))
    cross = np.zeros((p + 1, d))
    for start in range(0, idx.size, block_rows):
        sel = idx[start:start + block_rows]
        # float32 products per block (half the cost of float64 at K*D = 3840), float64 running totals
        x = np.asarray(contexts[sel], dtype=np.float32).reshape(-1, p)
        x = np.hstack([x, np.ones((x.shape[0], 1), np.float32)])
        gram += x.T @ x
        cross += x.T @ np.asarray(targets[sel], dtype=np.float32)
    return gram, cross


def _solve(gram: np.ndarray, cross: np.ndarray, alpha: float) -> np.ndarray:
    """Solve with the penalty added to ``gram``'s diagonal in place and the diagonal restored exactly
    afterwards (no second (p+1)^2 copy: 118 MB at K*D = 3840)."""
    p = gram.shape[0] - 1
    idx = np.arange(p)
    diag = gram[idx, idx].copy()
    gram[idx, idx] += max(alpha * diag.sum() / p, 1e-12)  # bias unpenalised
    try:
        return np.linalg.solve(gram, cross)
    finally:
        gram[idx, idx] = diag


def fit_ridge(contexts: np.ndarray, targets: np.ndarray, alpha: float = 0.1, block_rows: int = 4096) -> np.ndarray:
    """Ridge weights ``W`` ``(K*D + 1, D)`` minimising ||[X, 1] W - T||^2 + lam ||W_x||^2, streamed over row blocks.

    ``lam = alpha * trace(X^T X) / (K*D)``; the bias is not penalised.
    """
    return _solve(*_normal_equations(contexts, targets, None, block_rows), alpha)


def holdout_rows(n: int, article_ids: np.ndarray | None, share: float = HOLDOUT_SHARE) -> np.ndarray:
    """Held-out training rows for choosing alpha: every article whose rank among the sorted distinct ids
    is a multiple of round(1/share) when ids are known (whole articles, since an article's windows
    overlap), else the last ``share`` of the rows: files usually keep an article's windows together; in a
    shuffled file without ids, overlapping windows straddle the cut and the choice leans to smaller alphas."""
    if article_ids is not None:
        uniq, inverse = np.unique(np.asarray(article_ids), return_inverse=True)
        if uniq.size >= 2:
            return np.flatnonzero(inverse % max(int(round(1 / share)), 2) == 0)
    return np.arange(n - max(int(n * share), 1), n)


def select_ridge_alpha(contexts: np.ndarray, targets: np.ndarray, article_ids: np.ndarray | None = None,
                       alphas: tuple[float, ...] = RIDGE_ALPHAS, block_rows: int = 4096) -> tuple[float, dict[float, float]]:
    """The alpha of ``alphas`` whose ridge, fitted on the other training rows, has the highest mean cosine
    on :func:`holdout_rows`; returns ``(alpha, {alpha: holdout mean cosine})``.

    The normal equations of the fitting rows are those of all rows minus those of the held-out rows, so
    the training data is streamed twice, not once per alpha.
    """
    n = contexts.shape[0]
    hold = holdout_rows(n, article_ids)
    if hold.size == 0 or hold.size == n:
        return alphas[0], {}
    gram, cross = _normal_equations(contexts, targets, None, block_rows)
    gram_hold, cross_hold = _normal_equations(contexts, targets, hold, block_rows)
    gram -= gram_hold  # in place: the fitting rows' equations, one (p+1)^2 array fewer at the solves
    cross -= cross_hold
    del gram_hold
    scores = {}
    for alpha in alphas:
        predict = ridge_predictor(_solve(gram, cross, alpha))
        total = 0.0
        for start in range(0, hold.size, block_rows):
            sel = hold[start:start + block_rows]
            q, _ = predict(np.asarray(contexts[sel], dtype=np.float32))
            t = np.asarray(targets[sel], dtype=np.float32)
            cos = (q * t).sum(1) / np.maximum(np.linalg.norm(q, axis=1) * np.linalg.norm(t, axis=1), 1e-12)
            total += float(cos.sum(dtype=np.float64))
        scores[alpha] = total / hold.size
    return max(scores, key=lambda a: (scores[a], a)), scores  # ties: the larger (simpler) alpha


def ridge_predictor(weights: np.ndarray) -> Predictor:
    """A predictor applying fitted ridge weights."""

    def predict(ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = ctx.reshape(ctx.shape[0], -1)
        q = (x @ weights[:-1].astype(np.float32)) + weights[-1].astype(np.float32)
        return q, q

    return predict


def baseline_predictors(train_contexts: np.ndarray, train_targets: np.ndarray, alpha: float) -> dict[str, Predictor]:
    """The three baseline predictors (ridge fitted on the given training rows with ``alpha``)."""
    return {"copy_last": copy_last, "mean_context": mean_context,
            "ridge": ridge_predictor(fit_ridge(train_contexts, train_targets, alpha))}


def evaluate_baselines(predictors: dict[str, Predictor], splits: dict[str, tuple[np.ndarray, np.ndarray]], *,
                       pool_size: int, batch_size: int,
                       progress: Callable[[int, int], None] | None = None) -> dict[str, dict[str, EvalMetrics]]:
    """``{split: {baseline: EvalMetrics}}`` for every split given as ``(contexts, targets)``."""
    out: dict[str, dict[str, EvalMetrics]] = {}
    total = len(splits) * len(predictors)
    done = 0
    for split, (ctx, tgt) in splits.items():
        out[split] = {}
        for name, pred in predictors.items():
            out[split][name] = evaluate(pred, ctx, tgt, pool_size=pool_size, batch_size=batch_size)
            done += 1
            if progress is not None:
                progress(done, total)
    return out

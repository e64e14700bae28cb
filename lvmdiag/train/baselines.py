"""Baselines every run is compared with, scored by the same :func:`lvmdiag.train.evaluate.evaluate`.

- ``copy_last``: predict c_last (the last context vector). Its ``cos_prev`` is 1 by construction; its
  ``cos_next`` is what a model must beat to be better than copying.
- ``mean_context``: predict normalize(mean of the K context vectors).
- ``ridge``: closed-form ridge regression from the flattened K x D context (plus a bias) to the target,
  fitted once on the whole training split, prediction normalised. The penalty is
  ``alpha * trace(X^T X) / p`` (a multiple of the mean eigenvalue, so it is scale-free).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from lvmdiag.train.evaluate import EvalMetrics, Predictor, evaluate

BASELINES = ("copy_last", "mean_context", "ridge")


def copy_last(ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predict c_last."""
    q = ctx[:, -1]
    return q, q


def mean_context(ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predict the mean of the context vectors (normalised by the evaluator)."""
    q = ctx.mean(axis=1)
    return q, q


def fit_ridge(contexts: np.ndarray, targets: np.ndarray, alpha: float = 0.1, block_rows: int = 4096) -> np.ndarray:
    """Ridge weights ``W`` ``(K*D + 1, D)`` minimising ||[X, 1] W - T||^2 + lam ||W_x||^2, streamed over row blocks.

    ``lam = alpha * trace(X^T X) / (K*D)``; the bias is not penalised.
    """
    n, k, d = contexts.shape
    p = k * d
    gram = np.zeros((p + 1, p + 1))
    cross = np.zeros((p + 1, d))
    for start in range(0, n, block_rows):
        # float32 products per block (half the cost of float64 at K*D = 3840), float64 running totals
        x = np.asarray(contexts[start:start + block_rows], dtype=np.float32).reshape(-1, p)
        x = np.hstack([x, np.ones((x.shape[0], 1), np.float32)])
        gram += x.T @ x
        cross += x.T @ np.asarray(targets[start:start + block_rows], dtype=np.float32)
    lam = alpha * np.trace(gram[:p, :p]) / p
    gram[np.arange(p), np.arange(p)] += max(lam, 1e-12)
    return np.linalg.solve(gram, cross)


def ridge_predictor(weights: np.ndarray) -> Predictor:
    """A predictor applying fitted ridge weights."""

    def predict(ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = ctx.reshape(ctx.shape[0], -1)
        q = (x @ weights[:-1].astype(np.float32)) + weights[-1].astype(np.float32)
        return q, q

    return predict


def baseline_predictors(train_contexts: np.ndarray, train_targets: np.ndarray, alpha: float) -> dict[str, Predictor]:
    """The three baseline predictors (ridge fitted on the given training rows)."""
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

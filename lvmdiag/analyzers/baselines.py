"""The trivial predictors every next-chunk model must beat: copy-last and mean-of-context.

Metric definitions follow the upstream trainers: ``prev`` is the last context vector c_last,
``cos_next = cos(q, t)``, ``cos_prev = cos(q, c_last)``, ``margin = cos_next - cos_prev``.
Copy-last predicts q = c_last, so its cos_prev is 1 and its margin is cos(c_last, t) - 1, strongly
negative on any real data: a negative margin is what a model that learned nothing beyond the
context already gets.

Two twins share these definitions: :func:`baseline_cosines` works on per-window cosine matrices
(the streaming analyzer never forms the predictions), :func:`predict` forms the prediction vectors
(for evaluation code that scores a model and its baselines with one function).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.analyzers.window_cosines import WindowCosines
from lvmdiag.errors import InputError
from lvmdiag.results import Estimate, Result

BASELINES: tuple[str, ...] = ("copy_last", "mean_context")

# |mean of unit context vectors|^2 below this: the mean is (numerically) the zero vector, whose
# normalisation is undefined; its cosines are taken as 0, as normalize() of a zero vector gives 0.
_MIN_MEAN_SQ = 1e-12


@dataclass(frozen=True)
class BaselineScore(Result):
    """cos_next, cos_prev and margin (= cos_next - cos_prev) of one trivial predictor, each with a CI."""

    cos_next: Estimate
    cos_prev: Estimate
    margin: Estimate

    def to_markdown(self) -> str:
        return f"cos_next {self.cos_next.to_markdown()}, cos_prev {self.cos_prev.to_markdown()}, margin {self.margin.to_markdown()}"


def baseline_cosines(wc: WindowCosines) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-window ``(cos_next, cos_prev)`` of each trivial predictor, from the window cosine matrix.

    Returns
    -------
    dict mapping "copy_last" and "mean_context" to two (B,) float64 arrays.

    With unit vectors u_i = c_i/|c_i| and m = mean_i u_i: cos(m, t) = mean_i cos(c_i, t) / |m| and
    |m|^2 = mean_ij cos(c_i, c_j), so the mean-context predictor needs no D-dimensional arithmetic.
    """
    k = wc.k
    cos = wc.cos
    last_next = cos[:, k - 1, k]
    copy_prev = np.where(wc.ok, 1.0, 0.0)  # cos(c_last, c_last) = 1 by definition
    m_sq = cos[:, :k, :k].mean(axis=(1, 2))
    usable = m_sq > _MIN_MEAN_SQ
    inv_norm = np.zeros_like(m_sq)
    np.divide(1.0, np.sqrt(np.where(usable, m_sq, 1.0)), out=inv_norm, where=usable)
    mean_next = cos[:, :k, k].mean(axis=1) * inv_norm
    mean_prev = cos[:, :k, k - 1].mean(axis=1) * inv_norm
    return {"copy_last": (last_next, copy_prev), "mean_context": (mean_next, mean_prev)}


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def predict(name: str, contexts: np.ndarray) -> np.ndarray:
    """The prediction (B, D) of trivial predictor ``name`` for a block of contexts (B, K, D).

    "copy_last" returns c_last; "mean_context" returns normalize(mean_i normalize(c_i)).
    """
    contexts = np.asarray(contexts, dtype=np.float32)
    if contexts.ndim != 3:
        raise InputError(f"contexts must have shape (N, K, D); got {contexts.shape}.")
    if name == "copy_last":
        return contexts[:, -1, :]
    if name == "mean_context":
        return _normalize(_normalize(contexts).mean(axis=1))
    raise InputError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}.")


def baseline_table_rows(baselines: dict[str, BaselineScore]) -> list[list[str]]:
    """Markdown table rows (name, cos_next, cos_prev, margin) for a report."""
    labels = {"copy_last": "copy-last (predict c_last)", "mean_context": "mean-of-context (normalize(mean c_i))"}
    return [
        [labels.get(name, name), s.cos_next.to_markdown(), s.cos_prev.to_markdown(), s.margin.to_markdown()]
        for name, s in baselines.items()
    ]


__all__ = ["BASELINES", "BaselineScore", "baseline_cosines", "baseline_table_rows", "predict"]

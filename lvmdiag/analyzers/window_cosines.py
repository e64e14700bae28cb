"""Per-window cosine geometry of a block of windows: the (K+1) x (K+1) cosine matrix of c_0..c_{K-1}, t.

Every temporal-bias statistic (position profile, lag profile, trivial predictors) is a function of
the cosines between the K context vectors and the target of one window, so one pass computes the
window's Gram matrix in float32 (the only step that touches the D-dimensional vectors) and all
later arithmetic runs on (B, K+1, K+1) float64 arrays, whose size does not depend on D.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.stats.vectors import usable


@dataclass(frozen=True)
class WindowCosines:
    """Cosines of one block of windows.

    Attributes
    ----------
    cos : (B, K+1, K+1) float64 cosine matrix; index K is the target. Rows that are not ``ok`` hold 0.
    ok : (B,) bool, False when any of the K+1 vectors is zero or non-finite (excluded from every statistic)
    """

    cos: np.ndarray
    ok: np.ndarray

    @property
    def k(self) -> int:
        return int(self.cos.shape[1] - 1)


def window_cosines(contexts: np.ndarray, targets: np.ndarray) -> WindowCosines:
    """Cosine matrix of every window in a block. ``contexts`` (B, K, D), ``targets`` (B, D).

    Dot products are taken in float32 (the vectors are float32 embeddings; the relative error of a
    768-term float32 dot product is ~1e-6, far below any CI width) and converted to float64 before
    normalising, so the per-window arithmetic and all accumulation happen in float64.
    """
    b, k, _ = contexts.shape
    cc = np.einsum("nkd,njd->nkj", contexts, contexts)  # (B, K, K) float32
    ct = np.einsum("nkd,nd->nk", contexts, targets)  # (B, K)
    tt = np.einsum("nd,nd->n", targets, targets)  # (B,)
    gram = np.empty((b, k + 1, k + 1), dtype=np.float64)
    gram[:, :k, :k] = cc
    gram[:, :k, k] = ct
    gram[:, k, :k] = ct
    gram[:, k, k] = tt
    return _cosines(gram)


def gram_cosines(gram: np.ndarray) -> WindowCosines:
    """Cosines of a block of windows from their float32 Gram matrices (B, K+1, K+1), target last.

    The same arithmetic as :func:`window_cosines` after its dot products: a Gram block holding the
    same float32 products (e.g. :class:`lvmdiag.data.store_scan.WindowGram`) gives identical cosines.
    """
    # C order as window_cosines builds it: numpy's SIMD reductions (the means over the matrix) sum
    # in an order that depends on the memory layout, so another layout changes the last bits
    return _cosines(np.array(gram, dtype=np.float64, order="C"))


def _cosines(gram: np.ndarray) -> WindowCosines:
    """Normalise a float64 Gram block in place into cosines; windows with an unusable vector are zeroed."""
    diag = np.diagonal(gram, axis1=1, axis2=2)  # (B, K+1)
    ok = np.isfinite(gram).all(axis=(1, 2)) & usable(diag).all(axis=1)
    gram[~ok] = 0.0  # before scaling: inf * 0 would warn and give NaN
    inv = np.zeros_like(diag)
    np.divide(1.0, np.sqrt(diag, where=ok[:, None], out=np.zeros_like(diag)), out=inv, where=ok[:, None])
    cos = gram * inv[:, :, None] * inv[:, None, :]
    return WindowCosines(cos, ok)


def position_cosines(wc: WindowCosines) -> np.ndarray:
    """(B, K): cos(c_i, t) for i = 0..K-1 (i = K-1 is the last context vector, nearest the target)."""
    k = wc.k
    return wc.cos[:, :k, k]


def lag_cosines(wc: WindowCosines) -> np.ndarray:
    """(B, K): for lag L = 1..K, the mean of cos(x_j, x_{j+L}) over the K+1-L pairs of the window's K+1 vectors."""
    k = wc.k
    out = np.empty((wc.cos.shape[0], k))
    for lag in range(1, k + 1):
        out[:, lag - 1] = np.diagonal(wc.cos, offset=lag, axis1=1, axis2=2).mean(axis=1)
    return out


def window_delta(wc: WindowCosines) -> np.ndarray:
    """(B,): Δ = cos(c_last, t) - cos(c_0, t) of every window (the one per-window definition of Δ)."""
    k = wc.k
    return wc.cos[:, k - 1, k] - wc.cos[:, 0, k]


def adjacent_coherence(wc: WindowCosines) -> np.ndarray:
    """(B,): mean cos(x_j, x_{j+1}) over the K adjacent pairs of the window's K+1 vectors (lag 1 of :func:`lag_cosines`)."""
    return np.diagonal(wc.cos, offset=1, axis1=1, axis2=2).mean(axis=1)

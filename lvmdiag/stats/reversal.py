"""Time-reversal building blocks: odd (reversal-antisymmetric) window features and the AUC of odd scores.

A window is the sequence x_0..x_K (K context chunks, then the target). Reversing it gives x_K..x_0.
A feature map phi is *odd* when phi(reversed window) = -phi(window). With odd features, a linear
score s = beta . phi(w) of the reversed window is exactly -s, so a classifier of "true vs reversed
order" needs no intercept, and flipping the orientation of an article just negates its rows. That
makes both the permutation null (flip whole articles at random) and the signed direction score exact
sign operations on stored per-window quantities.
"""

from __future__ import annotations

import numpy as np

from lvmdiag.stats.vectors import usable


def position_weights(k: int) -> np.ndarray:
    """(K+1,) OLS slope weights over positions 0..K: (j - K/2) / sum_j (j - K/2)^2 (antisymmetric in j)."""
    pos = np.arange(k + 1, dtype=np.float64)
    centred = pos - k / 2.0
    return centred / np.sum(centred**2)


def slope_features(contexts: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension least-squares slope of the window's normalised trajectory, and a usable-row mask.

    ``contexts`` (B, K, D), ``targets`` (B, D). Each chunk is L2-normalised first (direction, not
    norm, carries meaning in sentence embeddings), then phi = sum_j w_j x_j with the antisymmetric
    slope weights of :func:`position_weights`, so phi(reversed) = -phi exactly.

    Returns
    -------
    phi : (B, D) float32 slope features (0 for unusable rows)
    ok : (B,) bool, False when any of the K+1 chunks is zero or non-finite
    """
    b, k, d = contexts.shape
    seq = np.empty((b, k + 1, d), dtype=np.float32)
    seq[:, :k] = contexts
    seq[:, k] = targets
    sq = np.einsum("bjd,bjd->bj", seq, seq, dtype=np.float64)  # (B, K+1)
    ok = usable(sq).all(axis=1)
    inv = np.zeros_like(sq)
    np.divide(1.0, np.sqrt(sq, where=ok[:, None], out=np.ones_like(sq)), out=inv, where=ok[:, None])
    w = position_weights(k)[None, :] * inv  # (B, K+1) slope weight / norm
    if not ok.all():  # unusable rows may hold NaN/inf: zero them (their phi is 0 anyway); usable rows are finite
        seq[~ok] = 0.0
    phi = np.einsum("bj,bjd->bd", w.astype(np.float32), seq)
    phi[~ok] = 0.0
    return phi.astype(np.float32, copy=False), ok


def cosine_slope_features(cos: np.ndarray) -> np.ndarray:
    """(B, K-1) odd features from each window's cosine matrix: the slope of similarity along the window.

    For lag L = 1..K-1 the sequence c_L(j) = cos(x_j, x_{j+L}), j = 0..K-L, runs backwards when the
    window is reversed, so its least-squares slope over j changes sign: an odd feature. It is non-zero
    in expectation when similarity changes along an article (e.g. an article-specific topic drift that
    makes late chunks more alike), which the window-slope features cannot see when every article
    drifts in its own direction. Values are rounded to 1e-7 (float32 dot-product noise).

    ``cos`` is the (B, K+1, K+1) cosine matrix of the K+1 vectors of each window (index K = target).
    """
    k = cos.shape[1] - 1
    out = np.zeros((cos.shape[0], max(k - 1, 0)))
    for lag in range(1, k):
        seq = np.stack([cos[:, j, j + lag] for j in range(k - lag + 1)], axis=1)  # (B, K-L+1)
        out[:, lag - 1] = seq @ position_weights(k - lag)
    return np.round(out, 7)


def odd_auc(scores: np.ndarray) -> np.ndarray:
    """AUC of "true order" scores ``s`` against "reversed order" scores ``-s``, per column.

    With odd scores every window contributes a positive (its score s_i) and a negative (-s_i), so
    AUC = (#{(i, j): s_i + s_j > 0} + #{s_i + s_j = 0} / 2) / n^2 over all n^2 pairs. 0.5 means the
    order cannot be told apart; reversing every window maps AUC to 1 - AUC exactly.

    ``scores`` is (n,) or (n, b); returns a float or a (b,) array.
    """
    s = np.asarray(scores, dtype=np.float64)
    squeeze = s.ndim == 1
    s2 = s[:, None] if squeeze else s
    n = s2.shape[0]
    out = np.empty(s2.shape[1])
    for c in range(s2.shape[1]):
        q = np.sort(s2[:, c])
        right = np.searchsorted(q, -q, side="right")
        left = np.searchsorted(q, -q, side="left")
        above = n - right  # j with q_j > -q_i
        ties = right - left
        out[c] = (above.sum() + 0.5 * ties.sum()) / float(n) ** 2
    return float(out[0]) if squeeze else out

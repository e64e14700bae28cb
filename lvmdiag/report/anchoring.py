"""Invert semantic anchoring: recover cos(q_raw, c) from the logged cos(q', c).

The upstream anchoring is q' = normalize(lam * q + (1 - lam) * c) for unit q and unit c (the
normalised context mean). With x = cos(q, c) and mu = 1 - lam,

    cos(q', c) = (lam * x + mu) / sqrt(lam^2 + mu^2 + 2 * lam * mu * x).

Its derivative has the sign of lam^2 * (lam + mu * x), which vanishes at x = -lam / mu, so the map
is strictly increasing on x >= -lam / mu: on all of [-1, 1] when lam >= 1/2 (the usual setting,
e.g. lam = 0.8), and only there is it one-to-one. Squaring gives the quadratic
lam^2 x^2 + 2 lam mu (1 - y^2) x + mu^2 - y^2 (lam^2 + mu^2) = 0; the larger root that maps back to
y is returned (the increasing branch). Applied to a *mean* cos_anchor this is exact only when
every window has the same alignment (the map is nonlinear), so the report calls it an estimate.
"""

from __future__ import annotations

import numpy as np


def anchored_cos(x: np.ndarray | float, lam: np.ndarray | float) -> np.ndarray:
    """cos(q', c) for raw alignment x = cos(q, c) and anchoring weight ``lam``."""
    x = np.asarray(x, dtype=float)
    lam = np.asarray(lam, dtype=float)
    mu = 1.0 - lam
    return (lam * x + mu) / np.sqrt(lam**2 + mu**2 + 2 * lam * mu * x)


def raw_cos_from_anchored(y: np.ndarray | float, lam: np.ndarray | float) -> np.ndarray:
    """The raw alignment x = cos(q, c) whose anchored cosine is ``y`` (NaN where not invertible).

    Not invertible when ``lam`` <= 0 (q' = c whatever q is) or when ``y`` lies outside the range
    the map can reach, [anchored_cos(-1), 1].
    """
    y = np.asarray(y, dtype=float)
    lam = np.broadcast_to(np.asarray(lam, dtype=float), y.shape)
    mu = 1.0 - lam
    out = np.full(np.broadcast_shapes(y.shape, lam.shape), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        a = lam**2
        b = 2 * lam * mu * (1 - y**2)
        c = mu**2 - y**2 * (lam**2 + mu**2)
        disc = np.sqrt(b**2 - 4 * a * c)
        for root in ((-b + disc) / (2 * a), (-b - disc) / (2 * a)):
            ok = np.isnan(out) & (lam > 0) & np.isfinite(root) & (np.abs(root) <= 1 + 1e-9)
            ok &= np.abs(anchored_cos(np.clip(root, -1, 1), lam) - y) < 1e-7
            out = np.where(ok, np.clip(root, -1.0, 1.0), out)
    return out

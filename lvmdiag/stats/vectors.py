"""The one rule for a usable embedding vector, shared by every analyzer.

A vector is usable when its squared norm is finite and above ``MIN_SQ_NORM``: an all-zero row (a
failed encoder batch) or a NaN/Inf row has no direction, so no cosine. Keeping the threshold in one
place means the bias, direction, divergence and leakage analyzers exclude exactly the same rows.
"""

from __future__ import annotations

import numpy as np

#: squared norms at or below this are treated as zero vectors (float32 underflow included)
MIN_SQ_NORM = 1e-30


def usable(sq_norms: np.ndarray) -> np.ndarray:
    """Boolean mask, same shape as ``sq_norms``: finite and above :data:`MIN_SQ_NORM`."""
    sq = np.asarray(sq_norms)
    return np.isfinite(sq) & (sq > MIN_SQ_NORM)

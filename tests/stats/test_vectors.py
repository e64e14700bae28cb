"""The usable-vector rule: zero, underflowing and non-finite rows are excluded, everything else kept."""

import numpy as np

from lvmdiag.stats.vectors import MIN_SQ_NORM, usable


def test_usable_matches_an_explicit_rule():
    x = np.array([[1.0, 0.0], [0.0, 0.0], [np.nan, 1.0], [np.inf, 0.0], [1e-20, 0.0], [1e-14, 0.0]], np.float32)
    sq = np.einsum("nd,nd->n", x, x, dtype=np.float64)
    want = [bool(np.all(np.isfinite(r)) and float(r.astype(np.float64) @ r.astype(np.float64)) > MIN_SQ_NORM)
            for r in x]
    assert usable(sq).tolist() == want == [True, False, False, False, False, True]
    # float32 squares underflow: the same rows must be unusable when squared in float32
    assert usable(np.einsum("nd,nd->n", x, x)).tolist() == want

"""How tests compare results that were computed in two ways: one policy, stated once.

BLAS kernels (``@``, ``np.dot``, ``np.linalg``, ``tensordot``, torch matmuls) choose their summation
order by matrix shape, blocking, thread count and CPU, so the same float computed through two
paths (one pass vs merged shards, another block size, another machine) may differ in the last
units of precision. The policy:

* exact equality for exact state: integer counts, histograms of well-separated values, hashes,
  ids, booleans, strings, and argmax/threshold decisions where no near-tie exists (state the
  no-near-tie assumption with :func:`assert_no_near_ties` when the values come from two paths);
* floats within a stated tolerance: :data:`FLOAT32` (a few float32 ulps near 1) for float32
  values, :data:`FLOAT64` for float64 values, :data:`RESULT_ATOL` for statistics in a result's JSON
  that are aggregated from float32 products.

Bit-identical reruns of the *same* computation (same shapes, same process, same seed) stay exact:
that is determinism, not an approximation.
"""

from __future__ import annotations

import numpy as np

# float32 eps is 1.19e-7: 1e-6 allows ~8 ulps near 1, enough for a reordered dot product of
# embedding length and far below any effect a test plants.
FLOAT32 = {"rtol": 1e-6, "atol": 1e-6}
# float64 eps is 2.2e-16: 1e-12 allows reordered sums of ~10^4 terms.
FLOAT64 = {"rtol": 1e-12, "atol": 1e-12}
# JSON statistics (means, CIs, AUCs) built from float32 cosines through another blocking.
RESULT_ATOL = 1e-5


def tolerance(dtype) -> dict:
    """The stated tolerance for floats of ``dtype`` (float32 and narrower: FLOAT32, else FLOAT64)."""
    return FLOAT32 if np.dtype(dtype).itemsize <= 4 else FLOAT64


def assert_same_array(actual, desired, **tol) -> None:
    """Exact for integer/bool/str arrays; floats within the stated tolerance of the coarser dtype.

    NaN must sit in the same places in both; ``tol`` (rtol/atol) overrides the default.
    """
    a, b = np.asarray(actual), np.asarray(desired)
    assert a.shape == b.shape, (a.shape, b.shape)
    floats = [x.dtype for x in (a, b) if np.issubdtype(x.dtype, np.floating)]
    if not floats:
        np.testing.assert_array_equal(a, b)
        return
    coarse = min(floats, key=lambda d: np.dtype(d).itemsize)
    np.testing.assert_allclose(a, b, **{**tolerance(coarse), **tol}, equal_nan=True)


def assert_same_result(a, b, atol: float = RESULT_ATOL) -> None:
    """Equal JSON results (nested dicts/lists): floats within ``atol``, everything else exact."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (a, b)
        for key in a:
            assert_same_result(a[key], b[key], atol)
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), (a, b)
        for x, y in zip(a, b):
            assert_same_result(x, y, atol)
    elif isinstance(a, float) and isinstance(b, float):
        assert (np.isnan(a) and np.isnan(b)) or abs(a - b) <= atol, (a, b)
    else:
        assert a == b, (a, b)


def assert_no_near_ties(values, edges, margin: float = FLOAT32["atol"]) -> None:
    """No value within ``margin`` (default: the float32 tolerance) of a threshold or bin edge, so a
    count or decision taken from floats of two computation paths is exact state and may be compared
    with ``==``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    e = np.asarray(edges, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size and e.size:
        gap = np.abs(v[:, None] - e[None, :]).min()
        assert gap > margin, f"a value lies {gap:.2e} from a threshold: the exact comparison would be a coin flip"

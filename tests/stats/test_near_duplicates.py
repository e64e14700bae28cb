"""Blocked nearest-cosine search equals the full-matrix computation, whatever the block and tile sizes."""

import numpy as np
import pytest

from lvmdiag.stats.near_duplicates import BlockedNearest, nearest_cosine, normalize_rows

from _compare import assert_same_array


def _brute(queries: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Obvious version: normalise in float64, build the whole matrix, skip zero references."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    norms = np.linalg.norm(refs, axis=1)
    sim = q @ (refs / np.where(norms == 0, 1, norms)[:, None]).T
    sim[:, norms == 0] = -np.inf
    return sim.max(axis=1), sim.argmax(axis=1)


@pytest.mark.parametrize("block_rows,tile_elems", [(1, 1), (7, 50), (64, 1 << 20), (1000, 3)])
def test_blocked_search_equals_brute_force(block_rows, tile_elems):
    rng = np.random.default_rng(5)
    refs = rng.standard_normal((120, 16)).astype(np.float32)
    refs[[3, 50]] = 0.0  # zero references are skipped
    queries = rng.standard_normal((37, 16)).astype(np.float32)
    queries[:5] = refs[10:15] + 0.01 * rng.standard_normal((5, 16)).astype(np.float32)
    cos, ids = nearest_cosine(queries, refs, block_rows=block_rows, tile_elems=tile_elems)
    want_cos, want_ids = _brute(queries.astype(np.float64), refs.astype(np.float64))
    np.testing.assert_allclose(cos, want_cos, atol=1e-5)
    # argmax is exact state once no query has two references near-tied (checked, not assumed)
    q64 = queries / np.linalg.norm(queries.astype(np.float64), axis=1, keepdims=True)
    r64 = refs / np.maximum(np.linalg.norm(refs.astype(np.float64), axis=1, keepdims=True), 1e-300)
    top2 = np.sort(q64 @ r64.T, axis=1)[:, -2:]
    assert np.all(top2[:, 1] - top2[:, 0] > 1e-5)
    np.testing.assert_array_equal(ids, want_ids)
    assert set(ids[:5]) == set(range(10, 15))


def test_merge_of_shards_equals_one_pass():
    rng = np.random.default_rng(1)
    q, _ = normalize_rows(rng.standard_normal((20, 8)))
    r, _ = normalize_rows(rng.standard_normal((90, 8)))
    whole = BlockedNearest(q)
    whole.update(r, np.arange(90))
    a, b = BlockedNearest(q), BlockedNearest(q)
    a.update(r[:40], np.arange(40))
    b.update(r[40:], np.arange(40, 90))
    merged = a.merge(b)
    # float32 maxima of products taken through other block shapes: equal up to BLAS rounding
    assert_same_array(merged.best_cos, whole.best_cos)
    # ids are exact state: no two references are near-tied for any query in this data
    top2 = np.sort(q.astype(np.float64) @ r.T.astype(np.float64), axis=1)[:, -2:]
    assert np.all(top2[:, 1] - top2[:, 0] > 1e-4)
    np.testing.assert_array_equal(merged.best_id, whole.best_id)


def test_zero_and_nonfinite_queries_get_no_neighbour():
    q = np.array([[0.0, 0.0], [np.nan, 1.0], [1.0, 0.0]], dtype=np.float32)
    r = np.array([[1.0, 0.1]], dtype=np.float32)
    cos, ids = nearest_cosine(q, r)
    assert np.isnan(cos[0]) and np.isnan(cos[1]) and ids[0] == -1 and ids[1] == -1
    assert cos[2] == pytest.approx(1 / np.sqrt(1.01), abs=1e-6) and ids[2] == 0


def test_no_references_leaves_nan():
    q, _ = normalize_rows(np.ones((3, 4)))
    st = BlockedNearest(q)
    cos, ids = st.result()
    assert np.isnan(cos).all() and (ids == -1).all()

"""Window cosine matrices: equal to pairwise cosines, invalid rows flagged, lags averaged over pairs."""

import numpy as np

from lvmdiag.analyzers.window_cosines import (
    adjacent_coherence,
    lag_cosines,
    position_cosines,
    window_cosines,
    window_delta,
)


def test_cosine_matrix_matches_pairwise_loop_and_flags_bad_rows():
    rng = np.random.default_rng(1)
    ctx = (rng.standard_normal((20, 3, 10)) * 5).astype(np.float32)
    tgt = rng.standard_normal((20, 10)).astype(np.float32)
    ctx[2, 1] = 0
    tgt[4, 0] = np.inf
    ctx[6, 0] = 1e-25  # underflows to a zero squared norm in float32
    wc = window_cosines(ctx, tgt)
    assert list(np.flatnonzero(~wc.ok)) == [2, 4, 6]
    assert np.all(wc.cos[~wc.ok] == 0)
    for n in np.flatnonzero(wc.ok):
        vecs = [ctx[n, i].astype(float) for i in range(3)] + [tgt[n].astype(float)]
        for i in range(4):
            for j in range(4):
                ref = vecs[i] @ vecs[j] / np.linalg.norm(vecs[i]) / np.linalg.norm(vecs[j])
                assert abs(wc.cos[n, i, j] - ref) < 1e-5
    np.testing.assert_array_equal(position_cosines(wc), wc.cos[:, :3, 3])
    lags = lag_cosines(wc)
    n = 0
    assert np.isclose(lags[n, 0], np.mean([wc.cos[n, 0, 1], wc.cos[n, 1, 2], wc.cos[n, 2, 3]]))
    assert np.isclose(lags[n, 1], np.mean([wc.cos[n, 0, 2], wc.cos[n, 1, 3]]))
    assert np.isclose(lags[n, 2], wc.cos[n, 0, 3])
    # the per-window Δ and adjacent coherence every analyzer uses, against the loop's cosines
    for n in np.flatnonzero(wc.ok):
        vecs = [ctx[n, i].astype(float) for i in range(3)] + [tgt[n].astype(float)]
        cos = lambda a, b: a @ b / np.linalg.norm(a) / np.linalg.norm(b)  # noqa: E731
        assert abs(window_delta(wc)[n] - (cos(vecs[2], vecs[3]) - cos(vecs[0], vecs[3]))) < 1e-5
        assert abs(adjacent_coherence(wc)[n] - np.mean([cos(vecs[j], vecs[j + 1]) for j in range(3)])) < 1e-5

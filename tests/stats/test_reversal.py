"""Odd window features and the AUC of odd scores, checked against plain loops."""

import numpy as np
import pytest

from lvmdiag.stats.reversal import odd_auc, position_weights, slope_features


def test_slope_features_are_odd_under_reversal_and_match_a_loop():
    rng = np.random.default_rng(0)
    seq = rng.standard_normal((7, 6, 5)).astype(np.float32)
    phi, ok = slope_features(seq[:, :5], seq[:, 5])
    rev = seq[:, ::-1]
    phi_rev, ok_rev = slope_features(np.ascontiguousarray(rev[:, :5]), np.ascontiguousarray(rev[:, 5]))
    assert ok.all() and ok_rev.all()
    np.testing.assert_allclose(phi_rev, -phi, atol=1e-6)
    for i in range(7):  # OLS slope of the normalised trajectory, dimension by dimension
        x = seq[i] / np.linalg.norm(seq[i], axis=1, keepdims=True)
        t = np.arange(6)
        want = [np.polyfit(t, x[:, j], 1)[0] for j in range(5)]
        np.testing.assert_allclose(phi[i], want, atol=1e-5)
    assert position_weights(5) @ np.arange(6) == pytest.approx(1.0)


def test_zero_or_nonfinite_chunks_make_the_window_unusable():
    seq = np.ones((3, 6, 4), np.float32)
    seq[1, 2] = 0.0
    seq[2, 5, 0] = np.nan
    phi, ok = slope_features(seq[:, :5], seq[:, 5])
    assert ok.tolist() == [True, False, False]
    assert np.isfinite(phi).all() and (phi[1:] == 0).all()


def _auc_loop(s, w=None):
    w = np.ones_like(s) if w is None else w
    num = den = 0.0
    for i in range(s.size):  # positive: s_i (true order); negative: -s_j (reversed)
        for j in range(s.size):
            num += w[i] * w[j] * ((s[i] > -s[j]) + 0.5 * (s[i] == -s[j]))
            den += w[i] * w[j]
    return num / den


def test_odd_auc_equals_pairwise_loop_and_flips_under_reversal():
    rng = np.random.default_rng(1)
    s = np.round(rng.standard_normal(40), 1)  # rounding creates ties, including s_i = -s_j
    assert odd_auc(s) == pytest.approx(_auc_loop(s))
    assert odd_auc(-s) == pytest.approx(1 - odd_auc(s))
    cols = np.stack([s, -s, s + 1], axis=1)
    np.testing.assert_allclose(odd_auc(cols), [_auc_loop(c) for c in cols.T])


def test_cosine_slope_features_are_odd_and_match_a_loop():
    from lvmdiag.analyzers.window_cosines import window_cosines
    from lvmdiag.stats.reversal import cosine_slope_features

    rng = np.random.default_rng(3)
    seq = rng.standard_normal((6, 6, 8)).astype(np.float32)
    rev = np.ascontiguousarray(seq[:, ::-1])
    f = cosine_slope_features(window_cosines(seq[:, :5], seq[:, 5]).cos)
    f_rev = cosine_slope_features(window_cosines(rev[:, :5], rev[:, 5]).cos)
    assert f.shape == (6, 4)
    np.testing.assert_allclose(f_rev, -f, atol=2e-7)
    for i in range(6):
        x = seq[i].astype(np.float64)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        for lag in range(1, 5):
            c = [x[j] @ x[j + lag] for j in range(6 - lag)]
            assert f[i, lag - 1] == pytest.approx(np.polyfit(np.arange(6 - lag), c, 1)[0], abs=1e-6)

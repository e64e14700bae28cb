"""Streaming state of the temporal-bias analyzer: shards merged in any order equal one pass."""

import numpy as np
import pytest

from lvmdiag.analyzers.bias_state import TemporalBiasState
from lvmdiag.errors import InputError


def messy_block(seed=0, n=200, k=4, d=12):
    """Non-unit vectors, zero and NaN rows, an invalid mask, dense group codes."""
    rng = np.random.default_rng(seed)
    ctx = (rng.standard_normal((n, k, d)) * rng.uniform(0.5, 3.0, (n, k, 1))).astype(np.float32)
    tgt = (rng.standard_normal((n, d)) + 0.8 * ctx[:, -1]).astype(np.float32)
    ctx[5, 2] = 0.0
    tgt[17] = 0.0
    ctx[40, 0, 3] = np.nan
    valid = np.ones(n, bool)
    valid[[60, 61]] = False
    codes = rng.integers(0, 9, size=n)
    return ctx, tgt, codes, valid


def test_shards_merged_in_any_order_equal_one_pass():
    ctx, tgt, codes, valid = messy_block(seed=7)
    one = TemporalBiasState()
    one.update(ctx, tgt, codes, valid)
    cuts = [0, 13, 90, 91, 200]
    shards = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        s = TemporalBiasState()
        s.update(ctx[a:b], tgt[a:b], codes[a:b], valid[a:b])
        shards.append(s)
    merged = TemporalBiasState()
    for s in reversed(shards):
        merged.merge(s)
    assert merged.n_excluded == one.n_excluded
    np.testing.assert_array_equal(merged.counts, one.counts)
    np.testing.assert_allclose(merged.sums, one.sums, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(merged.hist, one.hist)
    r1 = one.compute(n_resamples=200, rng=3)
    r2 = merged.compute(n_resamples=200, rng=3)
    assert r2.delta.value == pytest.approx(r1.delta.value, rel=1e-12)
    assert r2.delta.ci.low == pytest.approx(r1.delta.ci.low, rel=1e-9)
    assert r2.per_sequence_delta.quantiles == r1.per_sequence_delta.quantiles


def test_merge_refuses_a_different_window_length():
    a, b = TemporalBiasState(), TemporalBiasState()
    rng = np.random.default_rng(0)
    a.update(rng.standard_normal((4, 3, 8)), rng.standard_normal((4, 8)), np.zeros(4, int))
    b.update(rng.standard_normal((4, 5, 8)), rng.standard_normal((4, 8)), np.zeros(4, int))
    with pytest.raises(InputError, match="K"):
        a.merge(b)




def test_update_counts_excluded_rows_and_ignores_empty_blocks():
    ctx, tgt, codes, valid = messy_block(seed=1)
    s = TemporalBiasState()
    s.update(ctx[:0], tgt[:0], codes[:0])
    s.update(ctx, tgt, codes, valid)
    assert s.n_excluded == 5 and s.n_windows == ctx.shape[0] - 5
    assert s.hist.sum() == s.n_windows


def test_update_rejects_bad_labels_and_shapes():
    ctx, tgt, codes, _ = messy_block(seed=2, n=70)
    s = TemporalBiasState()
    with pytest.raises(InputError, match="non-negative"):
        s.update(ctx, tgt, codes - 5)
    with pytest.raises(InputError, match="integers"):
        s.update(ctx, tgt, codes.astype(float))
    with pytest.raises(InputError, match=r"\(B, K, D\)"):
        s.update(ctx[:, 0], tgt, codes)


def test_update_from_gram_equals_update_from_vectors():
    """``update_gram`` with the windows' float32 dot products gives the very same sums (no tolerance)."""
    ctx, tgt, codes, valid = messy_block(seed=3)
    k = ctx.shape[1]
    win = np.concatenate([ctx, tgt[:, None]], axis=1)  # (n, K+1, D)
    with np.errstate(invalid="ignore"):
        gram = np.empty((win.shape[0], k + 1, k + 1), np.float32)
        gram[:, :k, :k] = np.einsum("nkd,njd->nkj", ctx, ctx)
        gram[:, :k, k] = gram[:, k, :k] = np.einsum("nkd,nd->nk", ctx, tgt)
        gram[:, k, k] = np.einsum("nd,nd->n", tgt, tgt)
    a, b = TemporalBiasState(), TemporalBiasState()
    for s in range(0, ctx.shape[0], 64):
        a.update(ctx[s : s + 64], tgt[s : s + 64], codes[s : s + 64], valid[s : s + 64])
        b.update_gram(gram[s : s + 64], codes[s : s + 64], ctx.shape[2], valid[s : s + 64])
    assert np.array_equal(a.sums, b.sums) and np.array_equal(a.counts, b.counts)
    assert np.array_equal(a.hist, b.hist) and a.n_excluded == b.n_excluded > 0 and b.d == ctx.shape[2]
    with pytest.raises(InputError, match=r"Gram block needs shape \(B, K\+1, K\+1\)"):
        b.update_gram(gram[:, :, :2], codes, ctx.shape[2])

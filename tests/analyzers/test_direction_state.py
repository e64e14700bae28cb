"""The direction state is bounded: per-article sums plus a bottom-k classifier sample, mergeable exactly."""

import numpy as np
import pytest

from lvmdiag.analyzers.direction import analyze_direction
from lvmdiag.analyzers.direction_pass import DirectionAccumulator, block_values, lag_specs, sample_keys
from lvmdiag.synthetic import make_splits, make_store


@pytest.fixture(scope="module")
def split():
    store = make_store(n_articles=30, d=8, rho=0.8, length=(20, 40), rng=3)
    return make_splits(store, k=4, ratios=(1.0, 0.0), rng=4)["train"]


def _stream(seq, labels, max_windows, salt, cuts):
    """Accumulate the rows in parts cut at ``cuts`` (uneven blocks inside), merge the parts in a shuffled order."""
    parts = []
    bounds = [0, *cuts, seq.n]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        acc = DirectionAccumulator(seq.k, seq.d, max_windows, salt)
        for s in range(lo, hi, 37):
            e = min(s + 37, hi)
            acc.update(s, np.asarray(seq.contexts[s:e]), np.asarray(seq.targets[s:e]), np.ones(e - s, bool), labels[s:e])
        parts.append(acc)
    order = np.random.default_rng(len(cuts)).permutation(len(parts))
    out = parts[order[0]]
    for i in order[1:]:
        out = out.merge(parts[i])
    return out.finish()


def test_the_sample_is_the_bottom_k_of_the_row_keys_and_sharding_does_not_change_it(split):
    labels = split.article_ids.astype(np.int64)
    one = _stream(split, labels, 60, salt=11, cuts=[])
    rng = np.random.default_rng(0)
    for _ in range(5):  # random shardings
        cuts = sorted(rng.choice(np.arange(1, split.n), size=rng.integers(1, 6), replace=False).tolist())
        other = _stream(split, labels, 60, salt=11, cuts=cuts)
        np.testing.assert_array_equal(other.phi_groups, one.phi_groups)
        np.testing.assert_allclose(other.phi, one.phi, rtol=1e-6, atol=1e-6)  # float32 features, blocked differently
        np.testing.assert_array_equal(other.counts, one.counts)
        np.testing.assert_allclose(other.delta_sums, one.delta_sums, rtol=1e-9, atol=1e-9)
    # the slow way: every usable row's features, keep the 60 smallest keys, in row order
    phi, ok, *_ = block_values(np.asarray(split.contexts), np.asarray(split.targets), np.ones(split.n, bool),
                               lag_specs(split.k))
    rows = np.flatnonzero(ok)
    keep = np.sort(rows[np.argsort(sample_keys(11, rows))[:60]])
    np.testing.assert_allclose(one.phi, phi[np.searchsorted(rows, keep)], rtol=1e-6, atol=1e-6)
    assert one.phi.shape[0] == 60 and one.n_used == ok.sum() and one.n_windows == split.n


def test_sums_equal_the_per_window_computation(split):
    labels = split.article_ids.astype(np.int64)
    st = _stream(split, labels, None, salt=1, cuts=[split.n // 3])
    specs = lag_specs(split.k)
    _, ok, delta, fwd, bwd = block_values(np.asarray(split.contexts), np.asarray(split.targets),
                                          np.ones(split.n, bool), specs)
    lab = labels[ok]
    for j, a in enumerate(np.unique(lab)):  # articles in label order
        rows = lab == a
        assert st.counts[j] == rows.sum()
        assert st.delta_sums[j] == pytest.approx(delta[rows].sum(), rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(st.diff_sums[j], np.round(fwd[rows] - bwd[rows], 7).sum(0), rtol=1e-9, atol=1e-9)
    assert st.phi.shape[0] == ok.sum()  # no cap: every usable window feeds the classifier


def test_memory_stays_bounded_and_the_sample_is_uniform():
    rng = np.random.default_rng(5)
    k, d, n = 3, 4, 20_000
    acc = DirectionAccumulator(k, d, 500, salt=7)
    peak = 0
    for s in range(0, n, 1000):
        ctx = rng.standard_normal((1000, k, d)).astype(np.float32)
        tgt = rng.standard_normal((1000, d)).astype(np.float32)
        acc.update(s, ctx, tgt, np.ones(1000, bool), np.arange(s, s + 1000) // 50)
        peak = max(peak, sum(p[0].size for p in acc._sample))
    assert peak <= 500 + 500 // 4 + 1000  # compacted whenever it passes 1.25 x max_windows
    st = acc.finish()
    assert st.n_windows == n
    assert st.phi.shape[0] == 500
    # the kept rows spread evenly over the stream: 10 deciles of 50 expected each, binomial 99.9% band
    keys = sample_keys(7, np.arange(n))
    kept = np.sort(np.argsort(keys)[:500])
    counts = np.bincount(kept * 10 // n, minlength=10)
    from scipy.stats import binom

    lo, hi = binom.ppf(0.0005, 500, 0.1), binom.isf(0.0005, 500, 0.1)
    assert ((counts >= lo) & (counts <= hi)).all(), counts


def test_a_cap_below_the_windows_is_stated_and_the_seed_picks_the_sample(split):
    res = analyze_direction({"train": split}, max_windows=100, n_permutations=50, n_bootstrap=50, rng=0)
    s = res.splits[0]
    assert s.n_classifier == 100 and s.n_used > 100
    assert "uniform random sample of 100" in s.note
    again = analyze_direction({"train": split}, max_windows=100, n_permutations=50, n_bootstrap=50, rng=0)
    assert again.splits[0].classifier.statistic == s.classifier.statistic

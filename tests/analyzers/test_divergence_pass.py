"""The divergence pass: per-unit sums equal plain numpy, and shards merge into the one-pass state."""

import numpy as np

from lvmdiag.analyzers.divergence_pass import accumulate_split, group_sum_into
from lvmdiag.stats.mmd import RandomFourierFeatures
from lvmdiag.synthetic import make_splits, make_store


def test_group_sum_matches_add_at_sorted_or_not():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 3)).astype(np.float32)
    for unit in (np.sort(rng.integers(0, 7, 50)), rng.integers(0, 7, 50)):
        got, want = np.zeros((7, 3)), np.zeros((7, 3))
        group_sum_into(got, unit, x)
        np.add.at(want, unit, x.astype(np.float64))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_two_shards_merged_equal_one_pass():
    store = make_store(n_articles=12, d=6, rho=0.8, zero_rows=0.03, rng=1)
    ss = make_splits(store, k=3, ratios=(1.0,), names=("train",), rng=0)["train"]
    codes = ss.article_ids
    folds = np.arange(codes.max() + 1) % 3
    feats = {v: RandomFourierFeatures.create(6, 16, 1.0, rng=2) for v in ("context", "target")}
    args = (folds, feats, 3, 5, lambda n: None)
    whole = accumulate_split(ss, "train", codes, *args)
    cut = ss.n // 2 + 1  # cuts an article in two
    merged = accumulate_split(ss.subset(np.arange(cut)), "train", codes[:cut], *args).merge(
        accumulate_split(ss.subset(np.arange(cut, ss.n)), "train", codes[cut:], *args))
    np.testing.assert_array_equal(merged.unit_article, whole.unit_article)
    np.testing.assert_array_equal(merged.unit_of_row, whole.unit_of_row)
    np.testing.assert_array_equal(merged.ok, whole.ok)
    for v in whole.views:
        a, b = whole.views[v], merged.views[v]
        np.testing.assert_allclose(b.raw, a.raw, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.rff, a.rff, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(b.counts, a.counts)
        np.testing.assert_allclose(b.grams.gram, a.grams.gram, rtol=1e-5, atol=1e-5)
    for k in whole.per_window:
        np.testing.assert_allclose(merged.per_window[k], whole.per_window[k])
    np.testing.assert_allclose(merged.profile, whole.profile)

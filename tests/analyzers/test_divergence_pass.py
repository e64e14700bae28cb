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
        accumulate_split(ss.subset(np.arange(cut, ss.n)), "train", codes[cut:], *args, row_offset=cut))
    np.testing.assert_array_equal(merged.unit_article, whole.unit_article)
    np.testing.assert_array_equal(merged.unit_of_row, whole.unit_of_row)
    np.testing.assert_array_equal(merged.first_row, whole.first_row)
    assert merged.n_used == whole.n_used
    np.testing.assert_allclose(merged.prof_sums, whole.prof_sums, rtol=1e-12)
    for v in whole.views:
        a, b = whole.views[v], merged.views[v]
        np.testing.assert_allclose(b.raw, a.raw, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b.rff, a.rff, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(b.counts, a.counts)
        np.testing.assert_allclose(b.grams.gram, a.grams.gram, rtol=1e-5, atol=1e-5)
    for k in whole.per_window:
        np.testing.assert_allclose(merged.per_window[k], whole.per_window[k])


def _row_by_row(ss, codes, folds, feats):
    """The slow, obvious context view: every context chunk of every usable window, one row each."""
    from lvmdiag.analyzers.window_cosines import window_cosines
    from lvmdiag.stats.classifier_test import augment

    ok = window_cosines(np.asarray(ss.contexts), np.asarray(ss.targets)).ok
    uniq, unit = np.unique(codes, return_inverse=True)
    x = np.asarray(ss.contexts, np.float64)[ok].reshape(-1, ss.d)
    u = np.repeat(unit[ok], ss.k)
    raw, rff = np.zeros((uniq.size, ss.d)), np.zeros((uniq.size, feats["context"].n_features))
    np.add.at(raw, u, x)
    np.add.at(rff, u, feats["context"].transform(x.astype(np.float32)).astype(np.float64))
    grams = np.zeros((3, ss.d + 1, ss.d + 1))
    xa = augment(x).astype(np.float64)
    for f in range(3):
        r = folds[uniq[u]] == f
        grams[f] = xa[r].T @ xa[r]
    return raw, rff, np.bincount(u, minlength=uniq.size), grams


def test_repeated_context_chunks_are_done_once_with_the_same_sums_and_grams():
    # stride-1 windows: each chunk is a context chunk of up to K windows, processed once with weight m
    store = make_store(n_articles=10, d=6, rho=0.8, zero_rows=0.03, rng=4)
    ss = make_splits(store, k=4, ratios=(1.0,), names=("train",), rng=0)["train"]
    codes = ss.article_ids
    folds = np.arange(codes.max() + 1) % 3
    feats = {v: RandomFourierFeatures.create(6, 16, 1.0, rng=2) for v in ("context", "target")}
    st = accumulate_split(ss, "train", codes, folds, feats, 3, 7, lambda n: None)
    raw, rff, counts, grams = _row_by_row(ss, codes, folds, feats)
    v = st.views["context"]
    np.testing.assert_array_equal(v.counts, counts)  # multiplicities add up to the rows exactly
    # float32 products of sqrt(m)-scaled rows vs float64 rows: 1e-5 relative
    np.testing.assert_allclose(v.raw, raw, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(v.rff, rff, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(v.grams.gram, grams, rtol=1e-5, atol=1e-4)


def test_distinct_rows_keeps_rows_when_a_chunk_is_in_two_articles():
    from lvmdiag.analyzers.divergence_pass import distinct_rows

    keys = np.array([5, 7, 5, 9, 7], np.uint64)
    first, mult = distinct_rows(keys, np.array([0, 0, 0, 1, 0]))
    np.testing.assert_array_equal(first, [0, 1, 3])
    np.testing.assert_array_equal(mult, [2, 2, 1])
    assert distinct_rows(keys, np.array([0, 0, 1, 1, 0])) is None  # chunk 5 in units 0 and 1
    assert distinct_rows(np.array([1, 2, 3], np.uint64), np.zeros(3, int)) is None  # nothing repeats


def _full_half_and_cut(seed, **rate):
    """40 articles accumulated whole, with a sampling ``rate``, and with that rate in two parts cut inside an article."""
    store = make_store(n_articles=40, d=6, rho=0.8, rng=seed)
    ss = make_splits(store, k=3, ratios=(1.0,), names=("train",), rng=0)["train"]
    codes = ss.article_ids
    folds = np.arange(codes.max() + 1) % 3
    feats = {v: RandomFourierFeatures.create(6, 16, 1.0, rng=2) for v in ("context", "target")}
    args = (folds, feats, 3, 50, lambda n: None)
    cut = ss.n // 2 + 3
    parts = accumulate_split(ss.subset(np.arange(cut)), "train", codes[:cut], *args, **rate).merge(
        accumulate_split(ss.subset(np.arange(cut, ss.n)), "train", codes[cut:], *args, **rate, row_offset=cut))
    return accumulate_split(ss, "train", codes, *args), accumulate_split(ss, "train", codes, *args, **rate), parts

def test_above_the_cap_whole_articles_are_sampled_the_same_for_any_sharding():
    full, half, parts = _full_half_and_cut(seed=5, sample_rate=0.5)
    np.testing.assert_array_equal(parts.unit_of_row, half.unit_of_row)  # the same sample however it is cut
    # whole articles: a sampled unit keeps every used window, an unsampled one none
    per_unit = np.bincount(half.unit_of_row, minlength=half.n_units)
    counts = half.views["target"].counts
    assert set(np.flatnonzero(per_unit)) == set(np.flatnonzero(per_unit == counts))
    kept = np.flatnonzero(per_unit)
    assert 0 < kept.size < half.n_units  # 40 articles at rate 1/2: P(all or none) = 2^-39
    for k_, v in half.per_window.items():
        np.testing.assert_array_equal(v, full.per_window[k_][np.isin(full.unit_of_row, kept)])
    # sums and counts keep every window
    np.testing.assert_array_equal(half.views["target"].counts, full.views["target"].counts)
    np.testing.assert_allclose(half.prof_sums, full.prof_sums, rtol=1e-12)
    assert half.n_used == full.n_used and half.sample_rate == 0.5


def test_an_article_sample_drops_whole_articles_from_every_sum_the_same_for_any_sharding():
    full, half, parts = _full_half_and_cut(seed=6, article_rate=0.5)
    assert 0 < half.n_units < full.n_units
    np.testing.assert_array_equal(parts.unit_article, half.unit_article)
    assert parts.n_outside == half.n_outside and half.n_used + half.n_outside == full.n_used
    kept = np.isin(full.unit_article, half.unit_article)
    for v in ("context", "target"):  # the sampled articles' sums are exactly those of the full pass
        np.testing.assert_array_equal(half.views[v].counts, full.views[v].counts[kept])
        np.testing.assert_allclose(half.views[v].raw, full.views[v].raw[kept], rtol=1e-12)
    np.testing.assert_array_equal(half.first_row, full.first_row[kept])

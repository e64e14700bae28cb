"""Per-article statistics (checked against slow loops), binning, k-means topics and pooling of small strata."""

from __future__ import annotations

import numpy as np
import pytest

from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import InputError
from lvmdiag.resplit.strata import (
    ArticleStats,
    article_statistics,
    build_strata,
    column_values,
    encode_values,
    kmeans,
    quantile_bins,
    window_delta,
)
from lvmdiag.synthetic import make_store, store_windows


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_window_delta_matches_loop_and_flags_zero_rows():
    seq = store_windows(make_store(n_articles=5, d=16, rng=0), k=4)
    ctx = np.array(seq.contexts[:40])
    tgt = np.array(seq.targets[:40])
    ctx[3, 0] = 0.0  # a zero first-context vector makes the window invalid
    delta, ok = window_delta(ctx, tgt)
    for i in range(40):
        if i == 3:
            assert not ok[i] and delta[i] == 0.0
            continue
        assert ok[i]
        assert delta[i] == pytest.approx(_cos(ctx[i, -1], tgt[i]) - _cos(ctx[i, 0], tgt[i]), abs=1e-6)


def test_article_statistics_streaming_equals_one_pass_and_block_size_free():
    store = make_store(n_articles=12, d=16, rho=0.8, article_rho_sd=0.1, rng=3)
    seq = store_windows(store, k=3)
    _, labels = np.unique(seq.article_ids, return_inverse=True)
    labels = labels.astype(np.int64)
    a = article_statistics([seq], [labels], 12, topic=True, block_rows=7, rng=0)
    b = article_statistics([seq], [labels], 12, topic=True, block_rows=10_000, rng=0)
    np.testing.assert_array_equal(a.n_windows, np.bincount(labels))
    np.testing.assert_allclose(a.mean_delta, b.mean_delta, atol=1e-12)
    np.testing.assert_allclose(a.centroids, b.centroids, atol=1e-10)
    # slow loop for the mean Delta of each article
    delta, _ = window_delta(np.asarray(seq.contexts), np.asarray(seq.targets))
    for g in range(12):
        assert a.mean_delta[g] == pytest.approx(delta[labels == g].mean(), abs=1e-9)


def test_split_inputs_merge_to_the_same_statistics():
    seq = store_windows(make_store(n_articles=8, d=8, rng=1), k=3)
    _, lab = np.unique(seq.article_ids, return_inverse=True)
    whole = article_statistics([seq], [lab], 8)
    half = seq.n // 2
    parts = article_statistics([seq.subset(np.arange(half)), seq.subset(np.arange(half, seq.n))], [lab[:half], lab[half:]], 8)
    np.testing.assert_array_equal(whole.n_windows, parts.n_windows)
    np.testing.assert_allclose(whole.mean_delta, parts.mean_delta, atol=1e-12)


def test_quantile_bins_are_balanced_and_dense():
    v = np.random.default_rng(0).normal(size=400)
    codes, edges = quantile_bins(v, 4)
    assert edges.size == 3
    np.testing.assert_array_equal(np.bincount(codes), [100, 100, 100, 100])
    codes_tied, _ = quantile_bins(np.r_[np.zeros(300), np.ones(100)], 4)
    assert set(np.unique(codes_tied)) == {0, 1}  # empty bins collapsed, codes dense


def test_kmeans_recovers_planted_clusters_and_is_seeded():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 8)) * 5
    truth = np.repeat(np.arange(3), 50)
    x = centers[truth] + rng.normal(size=(150, 8))
    codes = kmeans(x, 3, rng=1)
    # same partition up to relabelling: every true cluster maps to exactly one code
    for c in range(3):
        assert np.unique(codes[truth == c]).size == 1
    assert np.unique(codes).size == 3
    np.testing.assert_array_equal(codes, kmeans(x, 3, rng=1))


def test_build_strata_reduces_bins_and_pools_small_cells():
    rng = np.random.default_rng(0)
    g = 400
    stats = ArticleStats(rng.integers(1, 100, g), rng.normal(size=g))
    s = build_strata(stats, ["length", "delta"], n_bins=4, min_articles=20)
    assert s.bins == (4, 4)
    counts = np.bincount(s.codes)
    assert counts.sum() == g and len(s.labels) == counts.size
    # every stratum but a pooled one has >= min_articles articles
    if "pooled" in s.labels[-1]:
        assert np.all(counts[:-1] >= 20)
    else:
        assert np.all(counts >= 20)
    few = build_strata(ArticleStats(rng.integers(1, 100, 30), rng.normal(size=30)), ["length", "delta"], min_articles=20)
    assert few.bins == (1, 1) and few.n_strata == 1
    assert build_strata(stats, []).n_strata == 1


def test_build_strata_user_columns_and_unknown_variable():
    stats = ArticleStats(np.ones(60, np.int64), np.zeros(60), columns={"source": np.array(["a", "b", "c"] * 20, dtype=object)})
    s = build_strata(stats, ["source"], min_articles=5)
    assert s.n_strata == 3 and all(lab.startswith("source=") for lab in s.labels)
    with pytest.raises(InputError, match="unknown stratification variable 'colour'"):
        build_strata(stats, ["colour"])
    with pytest.raises(InputError, match="topic"):
        build_strata(stats, ["topic"])


def test_column_values_from_extras_and_metadata_dicts():
    n = 4
    meta = np.array([{"article_index": i // 2, "source_dataset": "wiki" if i < 2 else "news"} for i in range(n)], dtype=object)
    seq = SequenceSet(np.zeros((n, 2, 3), np.float32), np.zeros((n, 3), np.float32), extras={"metadata": meta, "cat": np.arange(n)})
    np.testing.assert_array_equal(column_values(seq, "cat"), np.arange(n))
    assert list(column_values(seq, "source_dataset")) == ["wiki", "wiki", "news", "news"]
    assert column_values(seq, "missing") is None
    codes, uniq = encode_values([np.array(["x", "y"], dtype=object), np.array(["y", "z"], dtype=object)])
    assert codes[0][1] == codes[1][0] and uniq.size == 3

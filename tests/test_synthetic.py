"""The synthetic generator plants what it claims: lag decay rho^k, reversal, splits, duplicates."""

import numpy as np
import pytest

from lvmdiag.synthetic import make_splits, make_store, reverse_articles, store_windows


def _cos(a, b):
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_adjacent_cosine_is_exactly_rho_and_lag_k_close_to_rho_power_k():
    store = make_store(30, d=256, rho=0.8, length=30, rng=1)
    w = store_windows(store, k=5)
    np.testing.assert_allclose(_cos(w.contexts[:, -1], w.targets), 0.8, atol=1e-5)
    # lag-5 cosine: rho^5 plus noise of order 1/sqrt(d) per pair, averaged over many windows
    assert _cos(w.contexts[:, 0], w.targets).mean() == pytest.approx(0.8**5, abs=3 / np.sqrt(256))


def test_windows_never_cross_articles_and_count_is_L_minus_k():
    store = make_store(10, d=8, length=(6, 12), rng=2)
    w = store_windows(store, k=5)
    lengths = np.bincount(store.article_ids)
    assert w.n == int(np.sum(np.maximum(lengths - 5, 0)))


def test_reverse_articles_reverses_each_article():
    store = make_store(3, d=8, length=7, rng=3)
    rev = reverse_articles(store)
    for a in range(3):
        np.testing.assert_array_equal(rev.vectors[rev.article_ids == a], store.vectors[store.article_ids == a][::-1])


def test_splits_by_article_are_disjoint_and_by_window_are_not():
    store = make_store(40, d=8, rng=4)
    by_art = make_splits(store, by="article", rng=0)
    assert not set(by_art["train"].article_ids) & set(by_art["val"].article_ids)
    by_win = make_splits(store, by="window", rng=0)
    assert len(set(by_win["train"].article_ids) & set(by_win["val"].article_ids)) > 30
    dup = make_splits(store, by="article", n_duplicated=3, rng=0)
    assert len(set(dup["train"].article_ids) & set(dup["val"].article_ids)) == 3


def test_zero_rows_planted():
    store = make_store(20, d=8, zero_rows=0.1, rng=5)
    share = np.mean(np.linalg.norm(store.vectors, axis=1) == 0)
    assert 0.05 < share < 0.15

"""Ridge/LDA classifier with per-fold Grams from unit sums, checked against a direct per-fold fit."""

import numpy as np

from scipy.stats import norm

from lvmdiag.stats.classifier_test import FoldGrams, augment, fit_ridge_folds, held_out_auc


def _data(seed=0, n_units=12, d=5):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 9, size=n_units)
    unit = np.repeat(np.arange(n_units), sizes)
    x = rng.standard_normal((unit.size, d)).astype(np.float32)
    return x, unit


def _streamed(x, unit, unit_fold, step):
    """Fold Grams streamed in uneven blocks of ``step`` rows, and the per-unit sums and row counts."""
    fold = unit_fold[unit]
    grams = FoldGrams(x.shape[1], int(unit_fold.max()) + 1)
    for s in range(0, x.shape[0], step):
        grams.update(x[s : s + step], fold[s : s + step])
    sums = np.zeros((unit.max() + 1, x.shape[1]))
    np.add.at(sums, unit, x.astype(np.float64))
    return grams, sums, np.bincount(unit).astype(float)


def test_fit_from_unit_sums_equals_direct_ridge_per_fold():
    x, unit = _data()
    n_units, d = unit.max() + 1, x.shape[1]
    unit_fold = np.arange(n_units) % 3
    fold = unit_fold[unit]
    grams, sums, counts = _streamed(x, unit, unit_fold, step=7)
    rng = np.random.default_rng(1)
    labels = np.where(rng.random((n_units, 4)) < 0.5, 1.0, -1.0)
    model = fit_ridge_folds(grams.gram, sums, counts, unit_fold, labels, ridge=0.1)
    for f in range(3):
        tr = fold != f
        xa = augment(x[tr]).astype(np.float64)
        a = xa.T @ xa
        lam = 0.1 * np.trace(a[:-1, :-1]) / d + 1e-12
        a[np.arange(d), np.arange(d)] += lam
        y = labels[unit[tr]]  # (n_train, 4) row labels
        direct = np.linalg.solve(a, xa.T @ y)
        np.testing.assert_allclose(model.weights[f], direct, rtol=1e-4, atol=1e-5)


def test_fold_grams_merge_equals_one_pass():
    x, unit = _data(2)
    fold = unit % 2
    one = FoldGrams(x.shape[1], 2)
    one.update(x, fold)
    a, b = FoldGrams(x.shape[1], 2), FoldGrams(x.shape[1], 2)
    a.update(x[:20], fold[:20])
    b.update(x[20:], fold[20:])
    np.testing.assert_allclose(a.merge(b).gram, one.gram, rtol=1e-5)


def test_separable_units_give_high_scores_for_the_positive_class():
    rng = np.random.default_rng(4)
    unit = np.repeat(np.arange(20), 10)
    pos_unit = np.arange(20) < 10
    x = rng.standard_normal((200, 3)).astype(np.float32)
    x[pos_unit[unit], 0] += 3.0
    unit_fold = np.arange(20) % 4
    g = FoldGrams(3, 4)
    g.update(x, unit_fold[unit])
    sums = np.zeros((20, 3))
    np.add.at(sums, unit, x.astype(float))
    model = fit_ridge_folds(g.gram, sums, np.bincount(unit).astype(float), unit_fold,
                            np.where(pos_unit, 1.0, -1.0)[:, None])
    s = np.einsum("np,np->n", augment(x), model.weights[unit_fold[unit], :, 0])  # out-of-fold scores
    assert s[pos_unit[unit]].min() > s[~pos_unit[unit]].max() - 1.0
    assert s[pos_unit[unit]].mean() > 0 > s[~pos_unit[unit]].mean()


def test_held_out_auc_from_sums_equals_the_row_by_row_computation():
    # the slow, obvious way: score every held-out row, then Cohen's d with the pooled within-sample variance
    x, unit = _data(seed=5, n_units=16, d=4)
    x[unit % 2 == 1] += 0.4  # units of sample a sit a little apart, so d is not ~0
    n_units = unit.max() + 1
    unit_fold = (np.arange(n_units) // 2) % 4  # one unit of each sample per fold
    fold = unit_fold[unit]
    grams, sums, counts = _streamed(x, unit, unit_fold, step=11)
    rng = np.random.default_rng(3)
    labels = np.where(rng.random((n_units, 5)) < 0.5, 1.0, -1.0)
    labels[:, 0] = np.where(np.arange(n_units) % 2 == 1, 1.0, -1.0)  # the planted labelling first
    model = fit_ridge_folds(grams.gram, sums, counts, unit_fold, labels, ridge=0.1)
    got = held_out_auc(model.weights, grams.gram, np.hstack([sums, counts[:, None]]), counts, unit_fold, labels > 0)
    for c in range(labels.shape[1]):
        scores = np.array([augment(x[i : i + 1])[0].astype(np.float64) @ model.weights[fold[i], :, c]
                           for i in range(x.shape[0])])
        a = labels[unit, c] > 0
        n_a, n_b = a.sum(), (~a).sum()
        pooled = (((scores[a] - scores[a].mean()) ** 2).sum() + ((scores[~a] - scores[~a].mean()) ** 2).sum()) / a.size
        expect = norm.cdf((scores[a].mean() - scores[~a].mean()) / np.sqrt(pooled) / np.sqrt(2))
        # float32 row products (Gram, weights from float32-accumulated sums) against float64 rows: 1e-5
        np.testing.assert_allclose(got[c], expect, rtol=1e-5, atol=1e-5)
    assert got[0] > 0.6  # ideal Φ(0.8/√2) = 0.71; the planted labelling separates; the check above is not comparing two constants


def test_fold_grams_equal_a_direct_product_per_fold_with_weights_shuffled_folds_and_empty_blocks():
    """Each fold's Gram (intercept column included) against a float64 numpy product of that fold's rows;
    rows arrive with folds interleaved, some blocks weighted, one block empty. float32 products summed in
    float64: agreement to float32 rounding (rtol 1e-5 of entries of size ~rows)."""
    from lvmdiag.stats.classifier_test import FoldGrams

    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 7)).astype(np.float32)
    fold = rng.integers(0, 3, 500)
    w = rng.integers(1, 4, 500)
    g = FoldGrams(7, 3)
    g.update(x[:200], fold[:200])
    g.update(x[:0], fold[:0])
    g.update(x[200:], fold[200:], weights=w[200:])
    xa = np.c_[x, np.ones(500)].astype(np.float64)
    weight = np.r_[np.ones(200), w[200:]]
    for f in range(3):
        m = fold == f
        np.testing.assert_allclose(g.gram[f], (xa[m] * weight[m, None]).T @ xa[m], rtol=1e-5, atol=1e-3)

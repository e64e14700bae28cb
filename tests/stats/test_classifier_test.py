"""Ridge/LDA classifier with per-fold Grams from unit sums, checked against a direct per-fold fit."""

import numpy as np

from lvmdiag.stats.classifier_test import FoldGrams, augment, fit_ridge_folds


def _data(seed=0, n_units=12, d=5):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 9, size=n_units)
    unit = np.repeat(np.arange(n_units), sizes)
    x = rng.standard_normal((unit.size, d)).astype(np.float32)
    return x, unit


def test_fit_from_unit_sums_equals_direct_ridge_per_fold():
    x, unit = _data()
    n_units, d = unit.max() + 1, x.shape[1]
    unit_fold = np.arange(n_units) % 3
    fold = unit_fold[unit]
    grams = FoldGrams(d, 3)
    for s in range(0, x.shape[0], 7):  # streamed in uneven blocks
        grams.update(x[s : s + 7], fold[s : s + 7])
    sums = np.zeros((n_units, d))
    np.add.at(sums, unit, x.astype(np.float64))
    counts = np.bincount(unit).astype(float)
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
    scores = model.score(x, fold)
    for i in (0, 5, 17):
        f = fold[i]
        np.testing.assert_allclose(scores[i], augment(x[i : i + 1])[0] @ model.weights[f], rtol=1e-4, atol=1e-5)


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
    s = model.score(x, unit_fold[unit])[:, 0]
    assert s[pos_unit[unit]].min() > s[~pos_unit[unit]].max() - 1.0
    assert s[pos_unit[unit]].mean() > 0 > s[~pos_unit[unit]].mean()

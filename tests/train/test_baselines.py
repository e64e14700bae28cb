import numpy as np
import pytest

from lvmdiag.train.baselines import baseline_predictors, copy_last, evaluate_baselines, fit_ridge, mean_context
from lvmdiag.train.evaluate import evaluate


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_ridge_matches_numpy_lstsq_on_the_augmented_system():
    rng = np.random.default_rng(0)
    n, k, d, alpha = 300, 3, 5, 0.1
    ctx = rng.standard_normal((n, k, d)).astype(np.float32)
    tgt = rng.standard_normal((n, d)).astype(np.float32)
    w = fit_ridge(ctx, tgt, alpha=alpha, block_rows=64)
    x = np.hstack([ctx.reshape(n, -1).astype(np.float64), np.ones((n, 1))])
    p = k * d
    lam = alpha * np.trace(x[:, :p].T @ x[:, :p]) / p
    pen = np.sqrt(lam) * np.eye(p + 1)[:p]  # no penalty on the bias row
    want, *_ = np.linalg.lstsq(np.vstack([x, pen]), np.vstack([tgt, np.zeros((p, d))]), rcond=None)
    # float32 block products: relative error ~1e-6 on X^T X, amplified by a well-conditioned solve
    np.testing.assert_allclose(w, want, rtol=1e-4, atol=1e-6)


def test_ridge_recovers_a_planted_linear_map():
    rng = np.random.default_rng(1)
    n, k, d = 2000, 3, 8
    ctx = _unit(rng.standard_normal((n, k, d)))
    a = rng.standard_normal((d, d))
    tgt = _unit(ctx[:, 0] @ a)  # the target depends on the FIRST context vector only
    preds = baseline_predictors(ctx[:1500], tgt[:1500], alpha=1e-4)
    got = evaluate_baselines(preds, {"val": (ctx[1500:], tgt[1500:])}, pool_size=32, batch_size=256)["val"]
    assert got["ridge"].cos_next > 0.95
    assert got["copy_last"].cos_next < 0.3  # copying c_last knows nothing about c_0


def test_copy_last_and_mean_context_definitions():
    rng = np.random.default_rng(2)
    ctx = _unit(rng.standard_normal((50, 4, 6)))
    tgt = _unit(rng.standard_normal((50, 6)))
    cl = evaluate(copy_last, ctx, tgt)
    mc = evaluate(mean_context, ctx, tgt)
    assert cl.cos_prev == pytest.approx(1.0, abs=1e-6)
    assert cl.recall_at_1 == 0.0  # c_last is a candidate and scores 1
    assert mc.cos_anchor == pytest.approx(1.0, abs=1e-6)
    expected = np.mean(np.sum(tgt * ctx[:, -1], axis=1))
    assert cl.cos_next == pytest.approx(expected, abs=1e-6)


def test_alpha_selection_matches_explicit_refits_on_the_other_rows():
    # The gram-subtraction shortcut must score each alpha exactly as fitting on the other rows would.
    from lvmdiag.train.baselines import holdout_rows, select_ridge_alpha

    rng = np.random.default_rng(3)
    n, k, d = 400, 3, 6
    ctx = _unit(rng.standard_normal((n, k, d)))
    tgt = _unit(ctx[:, -1] @ rng.standard_normal((d, d)) + 0.5 * rng.standard_normal((n, d)))
    ids = np.repeat(np.arange(40), 10)
    hold = holdout_rows(n, ids)
    assert np.array_equal(np.unique(ids[hold]), np.arange(0, 40, 5))  # whole articles, every 5th
    rest = np.setdiff1d(np.arange(n), hold)
    alpha, scores = select_ridge_alpha(ctx, tgt, ids, alphas=(0.01, 1.0, 100.0), block_rows=64)
    for a, score in scores.items():
        w = fit_ridge(ctx[rest], tgt[rest], alpha=a)
        q = ctx[hold].reshape(len(hold), -1) @ w[:-1] + w[-1]
        want = np.mean(np.sum(_unit(q) * tgt[hold], axis=1))
        assert score == pytest.approx(want, abs=1e-5), a
    assert alpha == max(scores, key=scores.get)


def test_alpha_selection_shrinks_when_features_rival_rows_and_not_on_a_clean_map():
    from lvmdiag.train.baselines import select_ridge_alpha

    rng = np.random.default_rng(4)
    n, k, d = 120, 5, 16  # p = 80 features for 96 fitting rows: least squares would fit the noise
    ctx = _unit(rng.standard_normal((n, k, d)))
    noisy = _unit(ctx[:, -1] + 2.0 * rng.standard_normal((n, d)) / np.sqrt(d))
    alpha, scores = select_ridge_alpha(ctx, noisy)
    # (seeds 0-5 all choose 1.0, scoring 0.17-0.28 against 0.05-0.20 at alpha 0.01)
    assert 0.01 < alpha < 100.0 and scores[alpha] > scores[0.01] + 0.01
    clean = _unit(ctx[:, 0] @ rng.standard_normal((d, d)))  # an exact linear map of c_0: barely shrink
    assert select_ridge_alpha(ctx, clean)[0] <= 0.1

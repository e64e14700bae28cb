"""Trivial predictors: the cosine-matrix twin equals scoring the prediction vectors directly."""

import numpy as np
import pytest

from lvmdiag.analyzers.baselines import BASELINES, baseline_cosines, predict
from lvmdiag.analyzers.window_cosines import window_cosines
from lvmdiag.errors import InputError


def _cos(a, b):
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    return (a * b).sum(-1) / np.where(na * nb == 0, 1.0, na * nb)


@pytest.mark.parametrize("k", [2, 5])
def test_cosine_twin_equals_scoring_the_predictions(k):
    rng = np.random.default_rng(k)
    ctx = (rng.standard_normal((50, k, 24)) * rng.uniform(0.2, 4, (50, k, 1))).astype(np.float32)
    tgt = rng.standard_normal((50, 24)).astype(np.float32)
    twin = baseline_cosines(window_cosines(ctx, tgt))
    for name in BASELINES:
        q = predict(name, ctx)
        next_, prev = twin[name]
        np.testing.assert_allclose(next_, _cos(q, tgt), atol=1e-5)
        np.testing.assert_allclose(prev, _cos(q, ctx[:, -1]), atol=1e-5)


def test_copy_last_has_cos_prev_one_and_a_negative_margin():
    rng = np.random.default_rng(0)
    ctx = rng.standard_normal((30, 5, 16)).astype(np.float32)
    tgt = (ctx[:, -1] + rng.standard_normal((30, 16))).astype(np.float32)
    next_, prev = baseline_cosines(window_cosines(ctx, tgt))["copy_last"]
    np.testing.assert_array_equal(prev, 1.0)
    assert np.all(next_ - prev < 0)


def test_mean_of_context_that_cancels_out_scores_zero():
    v = np.ones(8, np.float32)
    ctx = np.stack([v, -v])[None]  # mean of unit vectors is the zero vector
    next_, prev = baseline_cosines(window_cosines(ctx, v[None]))["mean_context"]
    assert next_[0] == 0.0 and prev[0] == 0.0


def test_unknown_baseline_and_bad_shape_raise():
    with pytest.raises(InputError, match="unknown baseline"):
        predict("oracle", np.ones((2, 3, 4)))
    with pytest.raises(InputError, match=r"\(N, K, D\)"):
        predict("copy_last", np.ones((2, 4)))

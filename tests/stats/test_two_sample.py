"""Weighted two-sample statistics over units, checked against slow obvious loops and scipy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ks_2samp, wasserstein_distance

from lvmdiag.stats.two_sample import (
    SortedValues,
    auc_per_column,
    bootstrap_weights,
    group_mean_distance,
    percentile_ci,
    flip_interval,
    permutation_lower_bound,
    permutation_weights,
)
from lvmdiag.results import Estimate
from lvmdiag.stats.resampling import permutation_pvalue


def test_permutation_weights_keep_the_number_of_units_and_are_uniform():
    in_a = np.r_[np.ones(3, bool), np.zeros(7, bool)]
    w = permutation_weights(in_a, 4000, rng=0)
    assert np.all(w.sum(1) == 3)
    # each unit is in sample a with probability 3/10; binomial sd over 4000 draws is 0.0072
    assert np.all(np.abs(w.mean(0) - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 4000))


def test_bootstrap_weights_resample_within_each_side():
    in_a = np.r_[np.ones(4, bool), np.zeros(6, bool)]
    wa, wb = bootstrap_weights(in_a, 50, rng=1)
    assert np.all(wa.sum(1) == 4) and np.all(wb.sum(1) == 6)
    assert np.all(wa[:, ~in_a] == 0) and np.all(wb[:, in_a] == 0)


def test_group_mean_distance_matches_row_loop():
    rng = np.random.default_rng(2)
    unit = np.repeat(np.arange(8), [3, 1, 4, 2, 5, 2, 3, 1])
    x = rng.standard_normal((unit.size, 4))
    sums = np.zeros((8, 4))
    np.add.at(sums, unit, x)
    counts = np.bincount(unit).astype(float)
    wa = rng.integers(0, 3, size=(5, 8)).astype(float)
    wb = rng.integers(0, 3, size=(5, 8)).astype(float)
    wa[:, 0] += 1
    wb[:, 1] += 1
    got = group_mean_distance(wa, wb, sums, counts)
    for b in range(5):
        ma = np.average(x, axis=0, weights=wa[b, unit])
        mb = np.average(x, axis=0, weights=wb[b, unit])
        assert got.sq_distance[b] == pytest.approx(np.sum((ma - mb) ** 2))
        assert got.cosine[b] == pytest.approx(ma @ mb / np.linalg.norm(ma) / np.linalg.norm(mb))


def test_ecdf_distances_match_scipy_unweighted_and_weighted():
    rng = np.random.default_rng(3)
    values = np.round(rng.standard_normal(300), 1)  # rounding creates ties
    unit = np.arange(300) // 5  # 60 units of 5 rows
    in_a = np.arange(60) < 25
    sv = SortedValues(values, unit)
    d = sv.distances(in_a[None].astype(float), (~in_a)[None].astype(float))
    a, b = values[in_a[unit]], values[~in_a[unit]]
    assert d.ks[0] == pytest.approx(ks_2samp(a, b).statistic)
    assert d.wasserstein[0] == pytest.approx(wasserstein_distance(a, b))
    wa, wb = bootstrap_weights(in_a, 3, rng=4)
    dw = sv.distances(wa, wb)
    grid = np.unique(values)
    for r in range(3):
        ra, rb = wa[r, unit], wb[r, unit]
        fa = np.array([ra[values <= g].sum() for g in grid]) / ra.sum()
        fb = np.array([rb[values <= g].sum() for g in grid]) / rb.sum()
        assert dw.ks[r] == pytest.approx(np.abs(fa - fb).max())
        assert dw.wasserstein[r] == pytest.approx(wasserstein_distance(values, values, ra, rb))


def _auc_slow(s, pos, w=None):
    w = np.ones(s.size) if w is None else w
    num = den = 0.0
    for i in np.flatnonzero(pos):
        for j in np.flatnonzero(~pos):
            num += w[i] * w[j] * ((s[i] > s[j]) + 0.5 * (s[i] == s[j]))
            den += w[i] * w[j]
    return num / den


def test_auc_matches_pairwise_loop_with_ties():
    rng = np.random.default_rng(5)
    s = np.round(rng.standard_normal((40, 3)), 1)
    pos = rng.random((40, 3)) < 0.4
    got = auc_per_column(s, pos)
    for c in range(3):
        assert got[c] == pytest.approx(_auc_slow(s[:, c], pos[:, c]))


def test_bias_shifted_interval_contains_the_estimate_and_stays_non_negative():
    reps = np.abs(np.random.default_rng(8).normal(0.3, 0.05, 500))
    ci = percentile_ci(reps, center=0.2)
    assert ci.low <= 0.2 <= ci.high and ci.low >= 0
    plain = percentile_ci(reps)
    assert plain.low > 0.2  # the unshifted interval misses the estimate: why the shift exists


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=4, max_size=40), st.integers(0, 2**31 - 1))
def test_ks_wasserstein_and_auc_agree_with_scipy_on_any_small_sample(ints, seed):
    values = np.array(ints, dtype=float)  # small integers: many ties
    rng = np.random.default_rng(seed)
    in_a_row = np.zeros(values.size, bool)
    in_a_row[rng.choice(values.size, size=values.size // 2, replace=False)] = True
    sv = SortedValues(values, np.arange(values.size))  # one unit per row
    d = sv.distances(in_a_row[None].astype(float), (~in_a_row)[None].astype(float))
    a, b = values[in_a_row], values[~in_a_row]
    assert d.ks[0] == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)
    assert d.wasserstein[0] == pytest.approx(wasserstein_distance(a, b), abs=1e-12)
    assert auc_per_column(values[:, None], in_a_row[:, None])[0] == pytest.approx(_auc_slow(values, in_a_row))


@pytest.mark.parametrize("n_null", [9, 19, 99, 199, 499])
def test_flip_interval_excludes_zero_exactly_when_the_two_sided_test_rejects(n_null):
    """Duality with the two-sided (b+1)/(B+1) p-value that counts |null| >= |observed| (both tails pooled), on
    exchangeable draws: the miss rate is (m+1)/(B+1), m = floor(0.05 (B+1)) - 1 (0 for B < 19). Per-tail
    quantiles (the interval used before) disagreed with this p in about 1 in 10 rejections (review)."""
    rng = np.random.default_rng(n_null)
    n_rep = 4000
    misses = 0
    for _ in range(n_rep):
        draws = rng.standard_normal(n_null + 1)  # symmetric about 0, continuous: no ties
        obs, null = draws[0], draws[1:]
        ci = flip_interval(obs, null, 0.95)
        rejects = permutation_pvalue(obs, null, "two-sided") <= 0.05
        assert (not ci.low <= 0.0 <= ci.high) == rejects
        assert ci.low <= obs <= ci.high and ci.high - obs == pytest.approx(obs - ci.low)
        misses += rejects
    m = int(np.floor(0.05 * (n_null + 1))) - 1
    rate = (m + 1) / (n_null + 1) if m >= 0 else 0.0
    assert rate <= 0.05
    se = np.sqrt(max(rate * (1 - rate), 1e-12) / n_rep)
    assert abs(misses / n_rep - rate) <= 4 * se + 1e-12  # 4 binomial standard errors


def test_flip_interval_agrees_with_the_verdict_check_at_near_ties_and_any_level():
    from lvmdiag.results import TestResult

    rng = np.random.default_rng(3)
    for alpha in (0.1, 0.05, 0.01):  # as the analyzers call it: level 1 - alpha, verdict p <= alpha
        for _ in range(3000):
            null = rng.standard_normal(199) * 0.2
            obs = rng.uniform(0.25, 0.6) * rng.choice([-1, 1])
            p = permutation_pvalue(obs, null, "two-sided")
            ci = flip_interval(obs, null, 1 - alpha, (-1.0, 1.0))
            t = TestResult("s", obs, p, Estimate(obs, ci), 199, "flip", null_value=0.0)
            assert t.interval_excludes_null() == (p <= alpha)
    # a null magnitude within the p-value's 1e-12 tolerance of |observed| counts as an exceedance
    near = np.r_[np.full(189, 0.1), np.full(10, -(0.6 - 1e-13))]  # B = 199, m = 9: the 10th largest decides
    fewer = np.r_[np.full(190, 0.1), np.full(9, 0.6 - 1e-13)]
    for nulls in (near, fewer):
        for obs in (0.6, -0.6):
            p = permutation_pvalue(obs, nulls, "two-sided")
            t = TestResult("s", obs, p, Estimate(obs, flip_interval(obs, nulls, 0.95, (-1.0, 1.0))), 199, "flip",
                           null_value=0.0)
            assert t.interval_excludes_null() == (p <= 0.05)
    assert flip_interval(0.9, near[:10], 0.95, (-1.0, 1.0)).low == -1.0  # B = 10 cannot reject
    wide = flip_interval(0.99, rng.standard_normal(99), 0.95, (-1.0, 1.0))  # a null wider than the support
    assert -1.0 <= wide.low <= wide.high <= 1.0
    a, b = flip_interval(0.4, near, 0.95, (-1.0, 1.0)), flip_interval(-0.4, near, 0.95, (-1.0, 1.0))
    assert a.low == pytest.approx(-b.high, abs=1e-12) and a.high == pytest.approx(-b.low, abs=1e-12)  # reversal


def test_a_lower_bound_with_unbounded_support_is_finite():
    """With the default (-inf, inf) bounds the rounding band was inf and a rejecting test's bound became +inf."""
    rng = np.random.default_rng(0)
    null = rng.standard_normal(199)
    b = permutation_lower_bound(3.0, null, 0.0)
    assert 0.0 < b.low <= 3.0 and b.high == np.inf


def test_auc_per_column_equals_the_pairwise_definition_with_ties():
    """Vectorised AUC vs the obvious double loop over (positive, negative) pairs, ties counting 1/2."""
    from lvmdiag.stats.two_sample import auc_per_column

    rng = np.random.default_rng(4)
    for trial in range(30):
        n, c = int(rng.integers(2, 40)), int(rng.integers(1, 6))
        levels = int(rng.integers(2, 8))
        scores = rng.integers(0, levels, size=(n, c)).astype(np.float32) if trial % 2 else rng.standard_normal((n, c))
        positive = rng.random((n, c)) < 0.5
        got = auc_per_column(scores, positive)
        for j in range(c):
            p, q = scores[positive[:, j], j], scores[~positive[:, j], j]
            if p.size == 0 or q.size == 0:
                assert np.isnan(got[j])
                continue
            want = np.mean([(a > b) + 0.5 * (a == b) for a in p for b in q])
            assert got[j] == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("n_null", [9, 19, 99, 199, 499])
def test_permutation_lower_bound_exceeds_the_center_exactly_when_the_one_sided_test_rejects(n_null):
    """One-sided duality with p = (b+1)/(B+1), "greater", on exchangeable draws (observed = one more null draw).

    The null miss rate is (m+1)/(B+1), m = floor(0.05 (B+1)) - 1 (0 for B < 19). Draws are rounded to a
    grid so ties (the tolerance band of the p-value's count) occur often and must not break the duality.
    """
    from lvmdiag.stats.two_sample import permutation_lower_bound

    rng = np.random.default_rng(100 + n_null)
    n_rep = 4000
    misses = 0
    for rep in range(n_rep):
        draws = rng.standard_normal(n_null + 1)
        if rep % 2:
            draws = np.round(draws, 1)  # ties with the observed value
        obs, null = draws[0], draws[1:]
        ci = permutation_lower_bound(obs, null, 0.0, 0.95)
        rejects = permutation_pvalue(obs, null, "greater") <= 0.05
        assert ci.high == np.inf and (ci.low > 0.0) == rejects and ci.contains(obs) == (ci.low <= obs)
        misses += rejects
    m = int(np.floor(0.05 * (n_null + 1) + 1e-9)) - 1
    rate = (m + 1) / (n_null + 1) if m >= 0 else 0.0
    assert rate <= 0.05
    se = np.sqrt(max(rate * (1 - rate), 1e-12) / n_rep)
    assert abs(misses / n_rep - rate) <= 4 * se + 1e-12


def test_permutation_lower_bound_is_the_smallest_unrejected_shift_and_says_one_sided():
    """Against a slow scan of shifts theta: the bound is where the shifted one-sided test stops rejecting."""
    from lvmdiag.results import Estimate
    from lvmdiag.stats.two_sample import LowerBound, permutation_lower_bound

    rng = np.random.default_rng(7)
    null = 0.5 + 0.05 * rng.standard_normal(199)
    for obs in (0.3, 0.45, 0.5, 0.56, 0.7):
        ci = permutation_lower_bound(obs, null, 0.5, 0.95, (0.0, 1.0))
        thetas = np.linspace(0.0, 1.0, 20001)
        kept = [t for t in thetas if permutation_pvalue(obs, null + (t - 0.5), "greater") > 0.05]
        assert isinstance(ci, LowerBound) and ci.high == 1.0
        assert ci.low == pytest.approx(max(min(kept), 0.0), abs=1e-4)  # grid step 5e-5
        assert (ci.low > 0.5) == (permutation_pvalue(obs, null, "greater") <= 0.05)
    assert permutation_lower_bound(0.3, null, 0.5).low < 0.5  # a below-chance value never "excludes" 0.5
    # a null value within the p-value's 1e-12 tolerance below the observed one counts as an exceedance, so
    # the bound must not exceed 0.5 even though the plain formula gives 0.5 + 1e-13
    near = np.r_[np.full(189, 0.4), np.full(10, 0.6 - 1e-13)]  # B = 199, m = 9: the 10th largest decides
    assert permutation_pvalue(0.6, near, "greater") > 0.05 and permutation_lower_bound(0.6, near, 0.5).low <= 0.5
    fewer = np.r_[np.full(190, 0.4), np.full(9, 0.6 - 1e-13)]  # 9 exceedances <= m = 9: rejects
    assert permutation_pvalue(0.6, fewer, "greater") <= 0.05 and permutation_lower_bound(0.6, fewer, 0.5).low > 0.5
    # the verdict's own check (an end within 1e-9 of the null touches it) must agree with the p-value too
    from lvmdiag.results import TestResult

    for nulls in (near, fewer):
        p = permutation_pvalue(0.6, nulls, "greater")
        bound = permutation_lower_bound(0.6, nulls, 0.5, 0.95, (0.0, 1.0))
        t = TestResult("auc", 0.6, p, Estimate(0.6, bound), 199, "flip", null_value=0.5)
        assert t.interval_excludes_null() == (p <= 0.05)
    assert permutation_lower_bound(0.9, null[:10], 0.5, 0.95, (0.0, 1.0)).low == 0.0  # B = 10 cannot reject
    est = Estimate(0.7, permutation_lower_bound(0.7, null, 0.5, 0.95, (0.0, 1.0)))
    assert "one-sided" in est.to_markdown() and "≥" in est.to_markdown()
    assert set(est.to_dict()["ci"]) == {"low", "high", "level"}  # same JSON as a two-sided interval

"""Resampling helpers: exact small cases, calibration over seeds (binomial bands), BH vs scipy."""

import numpy as np
import pytest
from scipy import stats

from lvmdiag.errors import InputError
from lvmdiag.stats.resampling import (
    benjamini_hochberg,
    cluster_bootstrap_ratio,
    contiguous_block_labels,
    group_difference_test,
    group_reduce,
    permutation_pvalue,
    resample_counts,
)

N_SEEDS = 200


def binomial_band(p: float, n: int, level: float = 0.99) -> tuple[float, float]:
    """Range of a success share that a correct procedure falls in with probability >= level."""
    lo, hi = stats.binom.interval(level, n, p)
    return lo / n, hi / n


def clustered_sample(rng, n_groups=40, sd_between=1.0, sd_within=1.0):
    """Groups with a random effect (so rows within a group are correlated); population mean 0."""
    sizes = rng.integers(5, 30, size=n_groups)
    effects = rng.normal(0, sd_between, size=n_groups)
    labels = np.repeat(np.arange(n_groups), sizes)
    values = effects[labels] + rng.normal(0, sd_within, size=labels.size)
    return labels, values


def test_permutation_pvalue_is_b_plus_one_over_B_plus_one_and_never_zero():
    null = np.array([-3.0, -1.0, 0.5, 2.0, 4.0])
    assert permutation_pvalue(2.0, null) == pytest.approx((3 + 1) / 6)  # |-3|, 2, 4 >= 2
    assert permutation_pvalue(2.0, null, "greater") == pytest.approx((2 + 1) / 6)
    assert permutation_pvalue(-2.0, null, "less") == pytest.approx((1 + 1) / 6)
    assert permutation_pvalue(100.0, null) == pytest.approx(1 / 6)
    with pytest.raises(InputError):
        permutation_pvalue(1.0, null, "sideways")


def test_resample_counts_are_multinomial_with_equal_probabilities():
    """Every composition of 3 units drawn 3 times, against scipy's multinomial pmf (chi-square)."""
    b = 60_000
    w = resample_counts(3, b, np.random.default_rng(0))
    assert w.shape == (b, 3) and w.dtype == np.float64
    assert np.array_equal(w.sum(1), np.full(b, 3.0))  # counts: exact
    comps, observed = np.unique(w.astype(int), axis=0, return_counts=True)
    assert len(comps) == 10  # all compositions of 3 into 3 parts occur
    expected = b * stats.multinomial.pmf(comps, 3, [1 / 3] * 3)
    # a correct sampler fails this at the 0.001 level once in a thousand seeds; seed fixed
    assert stats.chisquare(observed, expected).pvalue > 1e-3


def test_group_reduce_matches_loop():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, size=100)
    values = rng.normal(size=(100, 3))
    expected = np.zeros((7, 3))
    for i, g in enumerate(labels):
        expected[g] += values[i]
    np.testing.assert_allclose(group_reduce(labels, values, 7), expected)
    np.testing.assert_allclose(group_reduce(labels, values[:, 0], 7), expected[:, 0])


def test_contiguous_block_labels():
    np.testing.assert_array_equal(contiguous_block_labels(7, 3), [0, 0, 0, 1, 1, 1, 2])
    with pytest.raises(InputError):
        contiguous_block_labels(7, 0)


def test_cluster_bootstrap_estimate_is_the_ratio_of_sums():
    rng = np.random.default_rng(1)
    labels, values = clustered_sample(rng)
    g = labels.max() + 1
    res = cluster_bootstrap_ratio(group_reduce(labels, values, g), np.bincount(labels), 200, rng=1)
    assert res.estimate[0] == pytest.approx(values.mean())
    assert res.low[0] < res.estimate[0] < res.high[0]


@pytest.mark.slow
def test_cluster_bootstrap_covers_at_nominal_rate_where_iid_bootstrap_does_not():
    """Over N_SEEDS clustered samples the 95% article bootstrap covers the true mean (0) at a rate
    inside the 99% binomial band of 0.95; treating rows as independent under-covers badly."""
    cover_cluster = cover_iid = 0
    for seed in range(N_SEEDS):
        rng = np.random.default_rng(seed)
        labels, values = clustered_sample(rng, n_groups=60)
        g = labels.max() + 1
        res = cluster_bootstrap_ratio(group_reduce(labels, values, g), np.bincount(labels), 400, rng=seed)
        cover_cluster += res.low[0] <= 0.0 <= res.high[0]
        iid = cluster_bootstrap_ratio(values, np.ones(values.size), 400, rng=seed)
        cover_iid += iid.low[0] <= 0.0 <= iid.high[0]
    lo, hi = binomial_band(0.95, N_SEEDS)
    assert lo <= cover_cluster / N_SEEDS <= hi, cover_cluster / N_SEEDS
    assert cover_iid / N_SEEDS < lo - 0.1, cover_iid / N_SEEDS


def test_cluster_bootstrap_needs_two_groups():
    with pytest.raises(InputError):
        cluster_bootstrap_ratio(np.ones(1), np.ones(1))


def _two_sets(rng, shift):
    labels, values = clustered_sample(rng, n_groups=50)
    g = labels.max() + 1
    in_a = rng.random(g) < 0.5
    in_a[:2], in_a[2:4] = True, False
    values = values + shift * in_a[labels]
    return group_reduce(labels, values, g), np.bincount(labels, minlength=g), in_a


@pytest.mark.slow
def test_group_difference_test_false_alarm_rate_and_power():
    rejections = 0
    for seed in range(N_SEEDS):
        rng = np.random.default_rng(1000 + seed)
        sums, counts, in_a = _two_sets(rng, 0.0)
        res = group_difference_test(sums, counts, in_a, n_resamples=199, rng=seed)
        rejections += res.pvalue[0] <= 0.05
    lo, hi = binomial_band(0.05, N_SEEDS)
    assert lo <= rejections / N_SEEDS <= hi, rejections / N_SEEDS

    rng = np.random.default_rng(7)
    sums, counts, in_a = _two_sets(rng, 2.0)  # two between-article SDs
    res = group_difference_test(sums, counts, in_a, n_resamples=499, rng=7)
    assert res.pvalue[0] <= 0.01
    assert res.low[0] > 0.5 and res.ci().contains(res.difference[0])
    assert res.pvalue[0] >= 1 / 500  # never zero


def test_group_difference_needs_two_groups_per_side():
    with pytest.raises(InputError):
        group_difference_test(np.ones(3), np.ones(3), np.array([True, False, False]))


def test_benjamini_hochberg_matches_scipy():
    rng = np.random.default_rng(3)
    p = np.r_[rng.uniform(size=30), rng.uniform(0, 0.01, size=5)]
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p, method="bh"))
    assert benjamini_hochberg(np.array([])).size == 0

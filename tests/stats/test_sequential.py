"""Curtailed Monte-Carlo p-values: same decisions as the fixed-cap test, valid, and able to reach alpha/m."""

import numpy as np
import pytest
from scipy.stats import binom

from lvmdiag.errors import InputError
from lvmdiag.stats.resampling import benjamini_hochberg, permutation_pvalue
from lvmdiag.stats.sequential import CurtailedTests, floor_note, resolve_cap, run_curtailed


def test_auto_cap_lets_a_lone_effect_reach_alpha_over_m():
    for m in (1, 2, 11, 21, 35, 100):
        cap = resolve_cap("auto", m, 0.05)
        assert 1 / (cap + 1) * m <= 0.05 / 1.05  # BH p of a lone effect at the floor passes, with room to spare
        assert cap >= 199
        assert cap == 199 or 1 / cap * m > 0.05 / 1.1 - 1e-12  # the smallest such cap: no extra cost
    assert resolve_cap(500, 35, 0.05) == 500
    assert resolve_cap("auto", 21, 0.05) == 461
    assert "cannot be reported" in floor_note(200, 35, 0.05, "x")  # the old default could never do it
    assert floor_note(769, 35, 0.05, "x") == ""
    for bad in (0, -3, "abc", 2.5j):
        with pytest.raises(InputError):
            resolve_cap(bad, 3, 0.05)


def _fixed_and_curtailed(observed, stream, cap, alpha, alternative, batch):
    """p of the fixed-cap test on ``stream[:cap]`` and the curtailed run that reads the same stream in batches."""
    fixed = np.array([permutation_pvalue(o, stream[:cap, j], alternative) for j, o in enumerate(observed)])
    pos = [0]

    def draw(b, active):
        out = stream[pos[0] : pos[0] + b]
        pos[0] += b
        return out

    tests, _ = run_curtailed(observed, draw, cap, alpha, alternative, batch=batch)
    return fixed, tests


@pytest.mark.parametrize("alternative", ["greater", "two-sided", "less"])
@pytest.mark.parametrize("batch", [1, 7, 64, 500])
def test_decisions_equal_the_fixed_cap_test_at_every_level_up_to_alpha(alternative, batch):
    rng = np.random.default_rng(3)
    cap, alpha, t = 399, 0.05, 60
    stream = rng.standard_normal((cap, t))
    observed = rng.standard_normal(t) * 1.8  # some extreme, most not
    fixed, tests = _fixed_and_curtailed(observed, stream, cap, alpha, alternative, batch)
    curtailed = np.array([tests.result(j).pvalue for j in range(t)])
    for level in (alpha, 0.01, 0.002):  # raw decisions at alpha and below agree exactly
        assert np.array_equal(fixed <= level, curtailed <= level)
    # BH within the family decides the same way too (stopped tests have p >= alpha, as at the cap)
    assert np.array_equal(benjamini_hochberg(fixed) <= alpha, benjamini_hochberg(curtailed) <= alpha)
    used = np.array([tests.result(j).n_used for j in range(t)])
    stopped = used < cap
    assert (~stopped).any()
    assert stopped.any() == (batch < cap)  # one batch of the whole cap leaves nothing to curtail
    assert np.all(curtailed[stopped] >= alpha)  # a stopped test can never be rejected
    assert np.all(curtailed >= 1 / (cap + 1))  # never 0
    assert np.array_equal(curtailed[~stopped], fixed[~stopped])  # undecided tests run the full cap


def test_stopping_saves_replicates_on_null_tests():
    rng = np.random.default_rng(0)
    cap = 769
    stream = rng.standard_normal((cap, 200))
    _, tests = _fixed_and_curtailed(rng.standard_normal(200), stream, cap, 0.05, "two-sided", 100)
    used = np.array([tests.result(j).n_used for j in range(200)])
    # a null p is uniform: most stop after the first batches; only those with small p run on
    assert np.median(used) <= 200
    assert used.mean() < 0.3 * cap


def test_null_pvalues_are_valid():
    """Observed exchangeable with its replicates: P(p <= a) <= a for a in {alpha, 0.01} (binomial band)."""
    rng = np.random.default_rng(11)
    n_sim, cap, alpha = 4000, 199, 0.05
    data = rng.standard_normal((n_sim, cap + 1))
    pos = [1]

    def draw(b, active):
        out = data[:, pos[0] : pos[0] + b].T
        pos[0] += b
        return out

    tests, _ = run_curtailed(data[:, 0], draw, cap, alpha, "greater", batch=50)
    p = np.array([tests.result(j).pvalue for j in range(n_sim)])
    for a in (alpha, 0.01):
        expected = np.floor(a * (cap + 1)) / (cap + 1)
        assert (p <= a).sum() <= binom.ppf(0.999, n_sim, expected)
        assert (p <= a).sum() >= binom.ppf(0.001, n_sim, expected)


def test_lone_effect_among_nulls_is_rejected_with_auto_cap_but_not_with_200():
    rng = np.random.default_rng(5)
    m, alpha = 35, 0.05
    observed = np.r_[6.0, rng.standard_normal(m - 1)]  # test 0: z = 6, far beyond any replicate

    def run(cap):
        tests, _ = run_curtailed(observed, lambda b, a: rng.standard_normal((b, m)), cap, alpha, "greater")
        p = np.array([tests.result(j).pvalue for j in range(m)])
        return benjamini_hochberg(p)

    assert run(resolve_cap("auto", m, alpha))[0] <= alpha
    assert run(200)[0] > alpha  # the floor 1/201 times 35 tests: the old defaults could not report it


def test_non_finite_observed_is_untestable_not_significant():
    tests = CurtailedTests(np.array([np.nan, 1.0]), cap=99, alpha=0.05)
    tests.update(np.zeros((99, 2)))
    assert tests.result(0).pvalue == 1.0 and tests.result(0).n_used == 0
    assert tests.result(1).pvalue == pytest.approx(1 / 100)
    assert tests.result(1).mc_error == pytest.approx(np.sqrt(0.01 * 0.99 / 99))


def test_undecided_only_when_the_cap_blocks_a_test_that_more_permutations_could_make_significant():
    from lvmdiag.results import ConfidenceInterval, Estimate, TestResult
    from lvmdiag.stats.sequential import undecided_note

    def t(p, cap, m=21, adjusted=None):
        return TestResult("x", 0.1, p, Estimate(0.1, ConfidenceInterval(-1.0, 1.0)), cap, "perm",
                          pvalue_adjusted=adjusted if adjusted is not None else min(1.0, p * m), family="f",
                          family_size=m, null_value=0.0, n_resamples_cap=cap)

    at_floor = t(1 / 201, 200)  # 1/201 > 0.05/21: a lone effect cannot be significant with 200
    assert "undecided at this resolution" in undecided_note([at_floor, t(0.6, 200)], 0.05)
    assert "1 test(s) reached p ≤ 0.05" in undecided_note([at_floor, t(0.6, 200)], 0.05)
    assert undecided_note([t(0.6, 200), t(0.3, 200)], 0.05) == ""  # far above alpha: a real "no"
    assert undecided_note([t(1 / 501, 500)], 0.05) == ""  # 1/501 <= 0.05/21: the cap could reach
    assert undecided_note([t(1 / 6, 5, m=1)], 0.05) != ""  # p at its floor 1/6, above alpha itself
    significant = TestResult("y", 0.1, 1e-4, Estimate(0.1, ConfidenceInterval(0.05, 0.2)), 9999, "perm",
                             pvalue_adjusted=1e-3, family="f", family_size=21, null_value=0.0, n_resamples_cap=9999)
    assert undecided_note([at_floor, significant], 0.05) == ""

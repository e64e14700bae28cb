"""Result helpers: JSON safety, p-value formatting never shows 0, markdown tables."""

import json
import math
from dataclasses import dataclass

import numpy as np

from lvmdiag.results import ConfidenceInterval, Estimate, Result, TestResult, fmt, fmt_p, md_table


@dataclass(frozen=True)
class _Demo(Result):
    x: float
    arr: np.ndarray
    est: Estimate


def test_to_dict_is_json_safe_with_numpy_and_nan():
    demo = _Demo(np.float32(1.5), np.array([1, 2]), Estimate(float("nan"), ConfidenceInterval(0.1, 0.2)))
    d = demo.to_dict()
    assert d == {"x": 1.5, "arr": [1, 2], "est": {"value": None, "ci": {"low": 0.1, "high": 0.2, "level": 0.95}, "method": ""}}
    json.dumps(d, allow_nan=False)


def test_fmt_p_never_prints_zero():
    assert fmt_p(0.0, 999) == "< 0.001"
    assert fmt_p(1 / 1000, 999) == "≤ 0.001"
    assert fmt_p(0.0312) == "0.031"
    assert fmt_p(2e-5) == "2.0e-05"
    assert fmt_p(None) == "—"
    assert "0.000" not in fmt_p(1e-9)


def test_fmt_handles_non_finite_and_signs():
    assert fmt(None) == "—" and fmt(math.inf) == "—"
    assert fmt(-0.0625) == "-0.062" or fmt(-0.0625) == "-0.063"
    assert fmt(0.5) == "0.500"


def test_test_result_markdown_shows_effect_ci_and_p():
    t = TestResult("mean shift", 0.3, 1 / 200, Estimate(0.3, ConfidenceInterval(0.1, 0.5)), 199, "perm")
    text = t.to_markdown()
    assert "0.300 [0.100, 0.500]" in text and "≤ 0.005" in text


def test_md_table():
    assert md_table(["a", "b"], [[1, 2]]) == "| a | b |\n|---|---|\n| 1 | 2 |"


def test_an_interval_end_one_ulp_from_the_null_touches_it():
    """The contamination CI's low end came out 0.049748743718592975 against a null of 0.04974874371859297 (one
    ulp apart, equal in exact arithmetic) and the report said "the interval excludes 0.050"."""
    null = 0.04974874371859297
    for low, excludes in ((np.nextafter(null, 1.0), False), (null, False), (null + 1e-6, True)):
        t = TestResult("c", 0.2, 0.075, Estimate(0.2, ConfidenceInterval(low, 0.25)), 199, "perm", null_value=null)
        assert t.interval_excludes_null() is excludes
        assert t.status(0.05) == ("nominal" if excludes else "none")
    for high, excludes in ((-1e-12, False), (-1e-8, True)):  # near a null of 0 the tolerance is 1e-9, absolute
        t = TestResult("c", -0.2, 0.5, Estimate(-0.2, ConfidenceInterval(-0.3, high)), 199, "perm", null_value=0.0)
        assert t.interval_excludes_null() is excludes


def test_evidence_says_after_correction_only_when_a_correction_raised_p():
    """A family of one (BH p = p) printed "not significant after correction" although nothing was corrected."""
    lone = TestResult("c", 0.2, 0.03, Estimate(0.2, ConfidenceInterval(0.05, 0.3)), 199, "perm", pvalue_adjusted=0.03,
                      family_size=1, null_value=0.0)
    assert "after correction" not in lone.evidence(0.01) and "p > 0.01: not significant" in lone.evidence(0.01)
    fam = TestResult("c", 0.2, 0.03, Estimate(0.2, ConfidenceInterval(0.05, 0.3)), 199, "perm", pvalue_adjusted=0.2,
                     family_size=7, null_value=0.0)
    assert "but not significant after correction" in fam.evidence(0.05)


def test_a_raw_p_above_alpha_is_not_blamed_on_the_correction():
    t = TestResult("c", 0.2, 0.08, Estimate(0.2, ConfidenceInterval(0.05, 0.3)), 199, "perm", pvalue_adjusted=0.3,
                   family_size=7, null_value=0.0)
    assert "the interval excludes 0.000, but p > 0.05: not significant" in t.evidence(0.05)

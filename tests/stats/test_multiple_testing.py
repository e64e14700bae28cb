"""One BH family across every TestResult nested anywhere in a result."""

from dataclasses import dataclass

import numpy as np

from lvmdiag.results import Estimate, Result, TestResult
from lvmdiag.stats.multiple_testing import adjust_all, iter_tests
from lvmdiag.stats.resampling import benjamini_hochberg


def _t(name, p):
    return TestResult(name, 0.0, p, Estimate(0.0), 99, "m")


@dataclass(frozen=True)
class Inner(Result):
    a: TestResult
    more: tuple


@dataclass(frozen=True)
class Outer(Result):
    title: str
    inner: Inner
    by_name: dict
    items: list


def test_adjust_all_walks_every_container_in_field_order():
    obj = Outer("x", Inner(_t("a", 0.01), (_t("b", 0.04), 3)), {"c": _t("c", 0.03)}, [_t("d", 0.5), "text"])
    names = [t.name for t in iter_tests(obj)]
    assert names == ["a", "b", "c", "d"]
    out = adjust_all(obj)
    expected = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5]))
    np.testing.assert_allclose([t.pvalue_adjusted for t in iter_tests(out)], expected)
    assert out.title == "x" and out.inner.more[1] == 3 and out.items[1] == "text"
    assert iter_tests(obj)[0].pvalue_adjusted is None  # the input is not modified (frozen results)


def test_adjust_all_without_tests_returns_the_object():
    assert adjust_all({"x": 1}) == {"x": 1}
    assert iter_tests([1, "a"]) == []

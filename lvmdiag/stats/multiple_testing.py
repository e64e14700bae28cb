"""Benjamini-Hochberg across every test inside a nested result (one family per report).

Results nest (a report holds analyzers, which hold comparisons, which hold TestResults); these
helpers walk dataclass fields, lists, tuples and dict values in a fixed order, so one BH correction
covers every p-value of a report whatever its shape, and the result is rebuilt (results are frozen).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

from lvmdiag.results import TestResult
from lvmdiag.stats.resampling import benjamini_hochberg


def adjust_all(obj: Any) -> Any:
    """Copy of ``obj`` with every TestResult's ``pvalue_adjusted`` = BH across all tests inside ``obj``."""
    tests = iter_tests(obj)
    if not tests:
        return obj
    return with_adjusted_pvalues(obj, benjamini_hochberg(np.array([t.pvalue for t in tests])))


def adjust_by_family(obj: Any) -> Any:
    """Copy of ``obj`` with BH applied within each family (``TestResult.family``) of the tests inside it.

    A family is one question about one split ("direction: val", "divergence: val vs train", "bias:
    val − train"), so adding or removing a split never changes another split's adjusted p-values,
    and a command that runs one analyzer gives the same verdict as ``lvmdiag data`` running all.
    Tests with an empty family name form one family together.
    """
    tests = iter_tests(obj)
    if not tests:
        return obj
    pvals = np.array([t.pvalue for t in tests], dtype=float)
    adjusted = np.empty(len(tests))
    sizes = np.empty(len(tests), dtype=np.int64)
    families: dict[str, list[int]] = {}
    for i, t in enumerate(tests):
        families.setdefault(t.family, []).append(i)
    for idx in families.values():
        adjusted[idx] = benjamini_hochberg(pvals[idx])
        sizes[idx] = len(idx)
    it = iter(zip(adjusted.tolist(), sizes.tolist()))

    def apply(t: TestResult) -> TestResult:
        adj, size = next(it)
        return dataclasses.replace(t, pvalue_adjusted=float(adj), family_size=int(size))

    return _replace_tests(obj, apply)


def family_sizes(obj: Any) -> dict[str, int]:
    """Family name -> number of tests inside ``obj``."""
    out: dict[str, int] = {}
    for t in iter_tests(obj):
        out[t.family] = out.get(t.family, 0) + 1
    return out


def with_adjusted_pvalues(obj: Any, adjusted: Sequence[float]) -> Any:
    """Copy of a (nested) result with each TestResult's ``pvalue_adjusted`` set, in :func:`iter_tests` order."""
    it = iter([float(a) for a in adjusted])
    out = _replace_tests(obj, lambda t: dataclasses.replace(t, pvalue_adjusted=next(it)))
    leftover = next(it, None)
    if leftover is not None:
        raise ValueError("more adjusted p-values than tests")
    return out


def iter_tests(obj: Any) -> list[TestResult]:
    """Every TestResult inside a nested result (dataclass fields, lists, tuples, dict values), in field order."""
    found: list[TestResult] = []
    _replace_tests(obj, lambda t: found.append(t) or t)
    return found


def _replace_tests(obj: Any, fn: Callable[[TestResult], TestResult]) -> Any:
    if isinstance(obj, TestResult):
        return fn(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {}
        for f in dataclasses.fields(obj):
            val = getattr(obj, f.name)
            new = _replace_tests(val, fn)
            if new is not val:
                changes[f.name] = new
        return dataclasses.replace(obj, **changes) if changes else obj
    if isinstance(obj, (list, tuple)) and not isinstance(obj, str):
        new_items = [_replace_tests(v, fn) for v in obj]
        if all(a is b for a, b in zip(new_items, obj)):
            return obj
        return type(obj)(new_items) if isinstance(obj, list) else tuple(new_items)
    if isinstance(obj, dict):
        new = {k: _replace_tests(v, fn) for k, v in obj.items()}
        return obj if all(new[k] is obj[k] for k in obj) else new
    return obj

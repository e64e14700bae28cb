"""``Result.to_frame()``: a result's main table as a pandas DataFrame (pandas imported only here).

One row per hypothesis test for the analyses (bias, direction, divergence, data report), one row per
split for leakage and resplit, one row per epoch for a run report. The numbers are the JSON twin's,
so the frame never disagrees with ``to_dict()``.
"""

from __future__ import annotations

from typing import Any

from lvmdiag.errors import InputError


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise InputError("to_frame() needs pandas: install lvmdiag[all] (or pip install pandas).") from None
    return pandas


def _test_rows(result: Any) -> list[dict[str, Any]]:
    from lvmdiag.stats.multiple_testing import iter_tests

    rows = []
    for t in iter_tests(result):
        ci = t.effect.ci
        rows.append({"test": t.name, "statistic": t.statistic, "effect": t.effect.value,
                     "ci_low": None if ci is None else ci.low, "ci_high": None if ci is None else ci.high,
                     "pvalue": t.pvalue, "pvalue_bh": t.pvalue_adjusted, "n_resamples": t.n_resamples,
                     "method": t.method})
    return rows


def _scalars(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if not isinstance(v, (dict, list))}


def result_frame(result: Any) -> Any:
    """The table of ``result`` (see the module docstring); InputError when it has none."""
    kind = type(result).__name__
    pd = _pandas()
    if kind == "LeakageResult":
        return pd.DataFrame([_scalars(s.to_dict()) for s in result.splits]).set_index("split")
    if kind == "RunReport":
        frame = pd.DataFrame(list(result.epoch_values), columns=list(result.epoch_columns))
        if "epoch" in frame and frame["epoch"].notna().all() and (frame["epoch"] % 1 == 0).all():
            frame["epoch"] = frame["epoch"].astype(int)
        return frame.set_index("epoch") if "epoch" in frame else frame
    if kind == "ResplitResult":
        return pd.DataFrame({"windows": result.n_windows, "articles": result.n_articles, "ratio": result.ratios,
                             "achieved": result.achieved}, index=pd.Index(result.names, name="split"))
    rows = _test_rows(result)
    if not rows:
        raise InputError(f"{kind} has no table; use to_dict() or to_markdown().")
    return pd.DataFrame(rows)

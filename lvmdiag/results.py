"""Small result types shared by every analyzer, and their JSON/markdown rendering helpers.

Results are frozen dataclasses. ``Result.to_dict()`` gives a JSON-safe dict (numpy scalars and
arrays become Python numbers and lists, NaN becomes None); subclasses implement ``to_markdown()``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


def to_jsonable(obj: Any) -> Any:
    """Convert dataclasses, numpy values, tuples and non-finite floats into JSON-safe Python objects."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):  # fields marked json=False stay out
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.metadata.get("json", True)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, (str, int)) or obj is None:
        return obj
    return str(obj)


class Result:
    """Mixin for result dataclasses: ``to_dict`` is generic, ``to_markdown`` is per result.

    Every result also renders itself for notebooks and reports (generic, built on the two above):
    ``to_html()`` (a self-contained page), ``_repr_html_``/``_repr_markdown_`` (Jupyter), ``plot()``
    (a matplotlib Figure) and ``to_frame()`` (a pandas DataFrame of the result's table). matplotlib and
    pandas are imported only when those are called.
    """

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)

    def to_markdown(self) -> str:  # pragma: no cover - every concrete result overrides it
        raise NotImplementedError(type(self).__name__)

    def to_html(self, *, figures: bool = True) -> str:
        """One self-contained HTML page: verdict first, collapsible method notes, figures embedded as PNG."""
        from lvmdiag.report_html import result_html

        return result_html(self, figures=figures)

    def _repr_html_(self) -> str:
        return self.to_html()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def figures(self) -> dict[str, Any]:
        """``{name: matplotlib Figure}`` of every figure this result has (empty when it has none)."""
        from lvmdiag.plots import figures_of

        return figures_of(self)

    def plot(self, name: str | None = None) -> Any:
        """The result's figure (``name`` picks one when there are several, e.g. a data report's "leakage")."""
        from lvmdiag.errors import InputError

        figs = self.figures()
        if not figs:
            raise InputError(f"{type(self).__name__} has no figure; use to_markdown() or to_frame().")
        if name is None:
            return next(iter(figs.values()))
        if name not in figs:
            raise InputError(f"{type(self).__name__} has no figure {name!r}; choose one of {', '.join(figs)}.")
        return figs[name]

    def to_frame(self) -> Any:
        """The result's main table as a pandas DataFrame (needs pandas: install lvmdiag[all] or pandas)."""
        from lvmdiag.frames import result_frame

        return result_frame(self)


@dataclass(frozen=True)
class ConfidenceInterval(Result):
    """A two-sided confidence interval ``[low, high]`` at ``level`` (e.g. 0.95)."""

    low: float
    high: float
    level: float = 0.95

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_markdown(self) -> str:
        return f"[{fmt(self.low)}, {fmt(self.high)}]"


@dataclass(frozen=True)
class Estimate(Result):
    """A point estimate with its confidence interval and how the interval was obtained."""

    value: float
    ci: ConfidenceInterval | None = None
    method: str = ""

    def to_markdown(self) -> str:
        if self.ci is None:
            return fmt(self.value)
        return f"{fmt(self.value)} {self.ci.to_markdown()}"


#: relative distance below which an interval end counts as touching the null value (float rounding)
NULL_TOLERANCE = 1e-9


@dataclass(frozen=True)
class TestResult(Result):
    """A hypothesis test: statistic, effect size with CI, and a resampling p-value that is never 0.

    ``pvalue`` is (b+1)/(B+1) for ``n_resamples`` = B replicates actually drawn (a test stops
    drawing once it can no longer reach its level; see :mod:`lvmdiag.stats.sequential`), with
    ``mc_error`` its Monte-Carlo standard error. ``family`` names the question the test belongs to
    (e.g. ``"direction: val"``); ``pvalue_adjusted`` is Benjamini-Hochberg within that family of
    ``family_size`` tests. ``null_value`` is the effect's value under no effect (0 for a difference,
    0.5 for an AUC, the permutation mean for a distance), so a verdict can say whether the interval
    excludes it.
    """

    __test__ = False  # not a pytest test class

    name: str
    statistic: float
    pvalue: float
    effect: Estimate
    n_resamples: int
    method: str
    pvalue_adjusted: float | None = None
    family: str = ""
    family_size: int | None = None
    null_value: float | None = None
    mc_error: float | None = None
    n_resamples_cap: int | None = None

    @property
    def p(self) -> float:
        """The p-value decisions use: BH-adjusted within the family when adjusted, else raw."""
        return self.pvalue_adjusted if self.pvalue_adjusted is not None else self.pvalue

    def interval_excludes_null(self) -> bool:
        """True when the effect's interval lies wholly on one side of ``null_value``.

        An end within rounding (relative 1e-9) of the null touches it: an interval end computed as
        ``observed - spread`` can land one ulp beside a null that is exactly that end in exact arithmetic.
        """
        ci = self.effect.ci
        if ci is None or self.null_value is None or not (math.isfinite(ci.low) and math.isfinite(ci.high)):
            return False
        tol = NULL_TOLERANCE * max(1.0, abs(self.null_value), abs(ci.low), abs(ci.high))
        return ci.low > self.null_value + tol or ci.high < self.null_value - tol

    def can_reach(self, alpha: float) -> bool:
        """Whether the resample cap lets a lone effect reach alpha/m in its family: 1/(cap+1) <= alpha/m.

        False means "not significant" is no evidence of no effect: the test could not have rejected.
        Unknown cap or family size: True.
        """
        if self.n_resamples_cap is None or not self.family_size:
            return True
        return 1.0 / (self.n_resamples_cap + 1) <= alpha / self.family_size * (1 + 1e-12)

    def interval_contradicts(self) -> bool:
        """True when the interval is known, the null value is known, and the interval contains it."""
        ci = self.effect.ci
        known = ci is not None and self.null_value is not None and math.isfinite(ci.low) and math.isfinite(ci.high)
        return bool(known and not self.interval_excludes_null())

    def status(self, alpha: float) -> str:
        """The one verdict rule of lvmdiag (markdown, JSON, findings and figures all use it).

        "significant": the family-corrected p is at most ``alpha`` and the interval (when it has a
        null value to compare with) excludes the null, so a verdict never contradicts its interval;
        "nominal": not significant, but the raw p is at most ``alpha`` or the interval excludes the
        null (a signal the correction does not confirm: reported as such, never as "chance");
        "none": neither.
        """
        if self.p <= alpha and not self.interval_contradicts():
            return "significant"
        if self.pvalue <= alpha or self.interval_excludes_null():
            return "nominal"
        return "none"

    def evidence(self, alpha: float) -> str:
        """Effect, interval and p in words that agree with :meth:`status`."""
        eff = self.effect.to_markdown()
        p = fmt_p(self.pvalue, self.n_resamples)
        fam = f" over {self.family_size} tests" if self.family_size and self.family_size > 1 else ""
        adj = f", BH p {fmt_p(self.pvalue_adjusted, self.n_resamples)}{fam}" if self.pvalue_adjusted is not None else ""
        text = f"{eff}, p {p}{adj}"
        if self.status(alpha) == "nominal":
            if self.p <= alpha:  # corrected p passes, but the interval still contains the null
                text += f" (p passes, but the interval still contains {fmt(self.null_value)}: not significant)"
            else:
                why = ("the interval excludes " + fmt(self.null_value) if self.interval_excludes_null()
                       else f"p ≤ {alpha:g} before correction")
                # "after correction" only where the correction is what failed: raw p passes, adjusted does not
                corrected = self.pvalue_adjusted is not None and self.pvalue <= alpha < self.pvalue_adjusted
                text += f" ({why}, but not significant after correction)" if corrected else \
                    f" ({why}, but p > {alpha:g}: not significant)"
        return text

    def to_markdown(self) -> str:
        p = fmt_p(self.pvalue, self.n_resamples)
        if self.pvalue_adjusted is not None:
            p += f" (BH {fmt_p(self.pvalue_adjusted, self.n_resamples)})"
        return f"{self.name}: effect {self.effect.to_markdown()}, p {p}"


def fmt(x: float | None, digits: int = 3) -> str:
    """Format a number for a report; None/NaN become an em dash."""
    if x is None:
        return "—"
    x = float(x)
    if not math.isfinite(x):
        return "—"
    if x != 0 and (abs(x) < 10 ** (-digits) or abs(x) >= 1e6):
        return f"{x:.{digits - 1}e}"
    return f"{x:+.{digits}f}" if x < 0 else f"{x:.{digits}f}"


def fmt_p(p: float | None, n_resamples: int | None = None) -> str:
    """Format a p-value; never prints exactly 0 (a resampling p-value is at least 1/(B+1))."""
    if p is None or not math.isfinite(float(p)):
        return "—"
    p = float(p)
    floor = 1.0 / (n_resamples + 1) if n_resamples else 0.0
    if p <= 0.0:
        return f"< {max(floor, 1e-300):.2g}"
    if n_resamples and p <= floor * (1 + 1e-9):
        return f"≤ {floor:.2g}"
    if p < 1e-3:
        return f"{p:.1e}"
    return f"{p:.3f}"


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render a markdown table; cells are converted with ``str`` (format numbers first)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


#: version of the JSON layout every command writes; bumped when a documented key changes meaning or goes
SCHEMA_VERSION = 1


def with_schema(payload: Any) -> dict[str, Any]:
    """``payload`` (a JSON-safe dict) with ``schema_version`` and ``lvmdiag_version`` first (docs/JSON.md)."""
    from lvmdiag import __version__

    body = payload if isinstance(payload, dict) else {"result": payload}
    body = {k: v for k, v in body.items() if k not in ("schema_version", "lvmdiag_version")}
    return {"schema_version": SCHEMA_VERSION, "lvmdiag_version": __version__, **body}

"""The result types detectors return: findings with their evidence, and hypotheses the evidence rules out.

A detector never prints; it returns a :class:`DetectorResult` holding zero or more
:class:`Finding` (something is wrong, with the numbers that show it) and zero or more
:class:`RuledOut` (a tempting explanation the numbers contradict). Each finding names the root
cause it supports (a key of :data:`CAUSES`), so the report can rank causes by evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from lvmdiag.results import Result, fmt

Severity = Literal["critical", "warning", "info"]
SEVERITY_WEIGHT = {"critical": 3, "warning": 2, "info": 1}

# Root causes a finding can support: key -> heading in the report.
CAUSES: dict[str, str] = {
    "schedule_transition": "A schedule event (end of warmup / lr change) destabilised the model",
    "loss_balance": "One loss term was not optimised: the objective is dominated by another term",
    "inert_mechanism": "Configured mechanisms never acted",
    "below_baseline": "The model does not beat trivial predictors on the same data",
    "overfitting": "The model fits train but not val (growing generalisation gap)",
    "divergence": "Numerical divergence (loss or metrics became NaN/Inf)",
    "no_learning": "The ranking loss never left the chance level",
    "train_val_gap": "A real train/val gap on the same metric",
    "data_split": "The data split itself (shared articles, distribution shift)",
    "metric_definitions": "Train and val logs measure different quantities (a diagnosis hazard, not a training fault)",
}


@dataclass(frozen=True)
class Evidence(Result):
    """One number behind a claim: ``label`` (what it is, where it comes from) and ``value``."""

    label: str
    value: float | str | None

    def to_markdown(self) -> str:
        value = self.value if isinstance(self.value, str) else fmt(self.value)
        return f"{self.label}: {value}"


@dataclass(frozen=True)
class Finding(Result):
    """Something the logs show is wrong.

    Attributes
    ----------
    detector : the detector module that produced it (e.g. ``"collapse"``)
    code : a stable machine name (e.g. ``"collapse_at_event"``)
    severity : ``"critical"``, ``"warning"`` or ``"info"``
    title : a short heading
    message : the claim in one or two sentences, with its numbers
    evidence : the numbers, each labelled
    epochs : the epochs it concerns
    cause : the :data:`CAUSES` key this finding supports (None: none)
    next_steps : commands (templates with ``{train}``, ``{val}``, ``{run_dir}``) that test or fix it
    contradicted_by : numbers elsewhere in the report that speak against reading this finding as the
        root cause (e.g. retrieval beats every trivial predictor); a cause whose findings are all
        contradicted is ranked after every uncontradicted cause
    """

    detector: str
    code: str
    severity: Severity
    title: str
    message: str
    evidence: tuple[Evidence, ...] = ()
    epochs: tuple[int, ...] = ()
    cause: str | None = None
    next_steps: tuple[str, ...] = ()
    contradicted_by: tuple[str, ...] = ()

    def to_markdown(self) -> str:
        lines = [f"**{self.title}** ({self.severity}). {self.message}"]
        lines += [f"- {e.to_markdown()}" for e in self.evidence]
        lines += [f"- contradicted by: {c}" for c in self.contradicted_by]
        return "\n".join(lines)


@dataclass(frozen=True)
class RuledOut(Result):
    """A hypothesis the numbers contradict, with the reason and the numbers."""

    detector: str
    hypothesis: str
    reason: str
    evidence: tuple[Evidence, ...] = ()

    def to_markdown(self) -> str:
        nums = "; ".join(e.to_markdown() for e in self.evidence)
        return f"~~{self.hypothesis}~~: {self.reason}" + (f" ({nums})" if nums else "")


@dataclass(frozen=True)
class DetectorResult(Result):
    """What one detector concluded.

    Attributes
    ----------
    detector : its name
    rule : the rule it applies, in one sentence with its thresholds
    findings : problems found (empty: silent)
    ruled_out : hypotheses contradicted by the numbers it looked at
    skipped : why it could not run (missing series, no data), or None when it ran
    """

    detector: str
    rule: str
    findings: tuple[Finding, ...] = ()
    ruled_out: tuple[RuledOut, ...] = ()
    skipped: str | None = None

    @property
    def fired(self) -> bool:
        return bool(self.findings)

    def to_markdown(self) -> str:
        if self.skipped:
            return f"{self.detector}: not run ({self.skipped})"
        if not self.findings:
            return f"{self.detector}: silent"
        return "\n\n".join(f.to_markdown() for f in self.findings)


def rel_change(before: float, after: float) -> float:
    """(after - before) / |before|; NaN when ``before`` is 0 or either value is not finite."""
    if not (math.isfinite(before) and math.isfinite(after)) or before == 0:
        return float("nan")
    return (after - before) / abs(before)


def pct(x: float, digits: int = 1) -> str:
    """A relative change as a signed percentage, e.g. ``-39.1%``."""
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x * 100:+.{digits}f}%"

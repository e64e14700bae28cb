"""Data evidence: findings of the data analyzers (leakage, divergence, direction) on the run's data.

This detector does not read data. It takes :class:`DataSignal` values, one per analysis, built by
:mod:`lvmdiag.report.data` from the analyzers' results (or by a caller with its own analysis), so it
is testable without data and the report works when no data is readable. Rule: a signal with
``detected`` True becomes a finding (leakage and divergence support the ``data_split`` cause); a
signal with ``detected`` False rules its hypothesis out, with its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from lvmdiag.report.events import ScheduleEvent
from lvmdiag.report.findings import DetectorResult, Evidence, Finding, RuledOut
from lvmdiag.report.history import RunHistory
from lvmdiag.results import Result

NAME = "data_evidence"
HYPOTHESES = {
    "leakage": "Train and val share articles or chunks (leakage)",
    "divergence": "Train and val are differently distributed (split shift)",
    "direction": "The data has a direction (forward differs from reversed order)",
}


@dataclass(frozen=True)
class DataSignal(Result):
    """One data analysis reduced to what the run report needs.

    Attributes
    ----------
    analysis : ``"leakage"``, ``"divergence"`` or ``"direction"``
    detected : whether the analysis found its effect (at its own significance rule)
    summary : one sentence with the numbers
    evidence : the numbers
    command : the lvmdiag command that reproduces the analysis
    """

    analysis: str
    detected: bool
    summary: str
    evidence: tuple[Evidence, ...] = ()
    command: str = ""

    def to_markdown(self) -> str:
        return f"{self.analysis}: {'detected' if self.detected else 'not detected'}: {self.summary}"


def rule() -> str:
    return "each data analysis (leakage, divergence, direction) that detects its effect is a finding; one that does not rules its hypothesis out"


def detect(history: RunHistory, events: tuple[ScheduleEvent, ...] = (), signals: Sequence[DataSignal] = ()) -> DetectorResult:
    """Turn data-analysis signals into findings and ruled-out hypotheses.

    Returns
    -------
    DetectorResult
        Skipped when no signal was given (no data readable or no analyzer available).
    """
    if not signals:
        return DetectorResult(NAME, rule(), skipped="no data analysis available (no readable data, or analyzers not installed)")
    findings, ruled = [], []
    for s in signals:
        hypothesis = HYPOTHESES.get(s.analysis, s.analysis)
        if s.detected:
            severity = "info" if s.analysis == "direction" else "critical" if s.analysis == "leakage" else "warning"
            findings.append(Finding(NAME, f"data_{s.analysis}", severity, hypothesis, s.summary, s.evidence, (),
                                    None if s.analysis == "direction" else "data_split",
                                    (s.command,) if s.command else ()))
        else:
            ruled.append(RuledOut(NAME, hypothesis, s.summary, s.evidence))
    return DetectorResult(NAME, rule(), tuple(findings), tuple(ruled))

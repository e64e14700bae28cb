"""The model against the trivial predictors (copy-last, mean-of-context) on the same data.

Skill score on cos_next: S = (model - baseline) / (1 - baseline), the share of the gap between the
baseline and a perfect predictor (cos 1) that the model closes; S <= 0 means no better than the
baseline. Rules, on the judged split at the last epoch:

- ``below_baseline`` (critical): S against the best trivial predictor < ``min_skill``;
- a negative model margin that at least one trivial predictor shares is *expected* (prev = c_last is
  itself a context vector, so any predictor near the context has cos_prev > cos_next; copy-last's
  margin is cos(c_last, t) - 1 <= 0 by construction): "the model predicts backward" is ruled out;
- ``backward_margin`` (warning): a negative model margin while every trivial predictor's margin is >= 0.

Baselines come from the run's ``baselines.json`` or from the bias analyzer on the run's data
(:func:`from_bias_result`); without either the detector is skipped and says what to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from lvmdiag.report.detectors._common import primary_split
from lvmdiag.report.events import ScheduleEvent
from lvmdiag.report.findings import DetectorResult, Evidence, Finding, RuledOut
from lvmdiag.report.history import RunHistory
from lvmdiag.results import Result, fmt

NAME = "baselines"
LABELS = {"copy_last": "copy-last", "mean_context": "mean-of-context", "ridge": "ridge"}
TRIVIAL = ("copy_last", "mean_context")


@dataclass(frozen=True)
class BaselineMetrics(Result):
    """cos_next, cos_prev and margin of one reference predictor on one split (CIs when known)."""

    predictor: str
    split: str
    cos_next: float
    cos_prev: float
    margin: float
    cos_next_ci: tuple[float, float] | None = None
    margin_ci: tuple[float, float] | None = None
    source: str = ""

    def to_markdown(self) -> str:
        ci = f" [{fmt(self.cos_next_ci[0])}, {fmt(self.cos_next_ci[1])}]" if self.cos_next_ci else ""
        return f"{LABELS.get(self.predictor, self.predictor)}: cos_next {fmt(self.cos_next)}{ci}, margin {fmt(self.margin)}"


@dataclass(frozen=True)
class BaselineParams:
    """``min_skill``: skill below which the model is flagged as no better than a trivial predictor."""

    min_skill: float = 0.0
    split: str | None = None


def rule(p: BaselineParams) -> str:
    return (f"skill = (model - baseline) / (1 - baseline) on cos_next at the last epoch; critical when skill vs the best "
            f"trivial predictor < {p.min_skill:g}; a negative margin shared by a trivial predictor is expected")


def skill_score(model: float, baseline: float) -> float:
    """(model - baseline) / (1 - baseline): 1 is perfect, 0 is no better than the baseline."""
    return (model - baseline) / (1.0 - baseline) if baseline < 1 else float("nan")


def from_baselines_json(obj: Mapping[str, Any], source: str = "baselines.json") -> tuple[BaselineMetrics, ...]:
    """Read ``{"val": {"copy_last": {"cos_next", "cos_prev", "margin"}, ...}, "train": {...}}``."""
    out = []
    for split, predictors in (obj or {}).items():
        if not isinstance(predictors, Mapping):
            continue
        for name, m in predictors.items():
            if isinstance(m, Mapping) and all(isinstance(m.get(k), (int, float)) for k in ("cos_next", "cos_prev")):
                margin = m.get("margin", m["cos_next"] - m["cos_prev"])
                out.append(BaselineMetrics(str(name), str(split), float(m["cos_next"]), float(m["cos_prev"]),
                                           float(margin), source=source))
    return tuple(out)


def from_bias_result(result: Any, split: str, source: str) -> tuple[BaselineMetrics, ...]:
    """Baselines from :func:`lvmdiag.analyzers.temporal_bias.analyze_bias` (``.baselines`` of ``BaselineScore``)."""
    out = []
    for name, score in result.baselines.items():
        ci = score.cos_next.ci
        mci = score.margin.ci
        out.append(BaselineMetrics(name, split, float(score.cos_next.value), float(score.cos_prev.value),
                                   float(score.margin.value), (ci.low, ci.high) if ci is not None else None,
                                   (mci.low, mci.high) if mci is not None else None, source))
    return tuple(out)


def _last(values: np.ndarray | None) -> float:
    if values is None:
        return float("nan")
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else float("nan")


def detect(history: RunHistory, events: tuple[ScheduleEvent, ...] = (), baselines: Sequence[BaselineMetrics] = (),
           params: BaselineParams | None = None) -> DetectorResult:
    """Compare the model's last-epoch metrics with the trivial predictors on the same split.

    Returns
    -------
    DetectorResult
        ``below_baseline`` / ``backward_margin`` findings, and ruled-out hypotheses ("the model predicts
        backward" when a trivial predictor shares the negative margin; "no better than copying" when skill > 0).
    """
    p = params or BaselineParams()
    split = p.split or primary_split(history)
    metrics = history.eval.get(split or "", {})
    model_next = _last(metrics.get("cos_next"))
    if not np.isfinite(model_next):
        return DetectorResult(NAME, rule(p), skipped=f"no {split} cos_next logged" if split else
                              "no evaluation split logged")
    refs = [b for b in baselines if b.split == split and b.predictor in TRIVIAL]
    if not refs:
        return DetectorResult(NAME, rule(p), skipped=f"no trivial-predictor baselines for {split} (no baselines.json "
                                                      "and no readable data: pass --val, or run lvmdiag bias)")
    model_prev = _last(metrics.get("cos_prev"))
    model_margin = _last(metrics.get("margin"))
    if not np.isfinite(model_margin) and np.isfinite(model_prev):
        model_margin = model_next - model_prev
    best = max(refs, key=lambda b: b.cos_next)
    evidence = [Evidence(f"model {split} cos_next / cos_prev / margin (last epoch)",
                         f"{fmt(model_next)} / {fmt(model_prev)} / {fmt(model_margin)}")]
    for b in refs:
        ci = f" (95% CI {fmt(b.cos_next_ci[0])} .. {fmt(b.cos_next_ci[1])})" if b.cos_next_ci else ""
        evidence.append(Evidence(f"{LABELS[b.predictor]} {split} cos_next / cos_prev / margin [{b.source}]",
                                 f"{fmt(b.cos_next)}{ci} / {fmt(b.cos_prev)} / {fmt(b.margin)}"))
        evidence.append(Evidence(f"skill vs {LABELS[b.predictor]}", skill_score(model_next, b.cos_next)))
    findings: list[Finding] = []
    ruled: list[RuledOut] = []
    skill = skill_score(model_next, best.cos_next)
    if skill < p.min_skill:
        findings.append(Finding(
            NAME, "below_baseline", "critical", f"The model is worse than {LABELS[best.predictor]}",
            f"On {split} the model's cos_next is {fmt(model_next)}; predicting {LABELS[best.predictor]} gives "
            f"{fmt(best.cos_next)} on the same data (skill {fmt(skill)}). The model has not learned anything a "
            "trivial predictor does not already do.",
            tuple(evidence), (int(history.epochs[-1]),), "below_baseline",
            ("lvmdiag bias --train {train} --val {val}",)))
    else:
        ruled.append(RuledOut(NAME, "The model is no better than copying the context",
                              f"skill vs {LABELS[best.predictor]} is {fmt(skill)} > {p.min_skill:g}",
                              (evidence[0], Evidence(f"{LABELS[best.predictor]} cos_next", best.cos_next))))
    if np.isfinite(model_margin) and model_margin < 0:
        shared = [b for b in refs if b.margin < 0]
        if shared:
            ruled.append(RuledOut(
                NAME, "The model predicts backward (its negative margin)",
                "the trivial predictors have negative margins on the same data: prev = c_last is a context vector, "
                "so any prediction near the context scores cos_prev > cos_next; a negative margin is expected, "
                "not a sign of backward prediction",
                (Evidence(f"model {split} margin", model_margin),
                 *(Evidence(f"{LABELS[b.predictor]} margin", b.margin) for b in shared))))
        else:
            findings.append(Finding(
                NAME, "backward_margin", "warning", "Negative margin that the trivial predictors do not share",
                f"The model's {split} margin is {fmt(model_margin)} while every trivial predictor's margin is >= 0 "
                f"({', '.join(f'{LABELS[b.predictor]} {fmt(b.margin)}' for b in refs)}).",
                tuple(evidence), (int(history.epochs[-1]),), "below_baseline"))
    return DetectorResult(NAME, rule(p), tuple(findings), tuple(ruled))

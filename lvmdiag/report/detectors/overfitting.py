"""Overfitting: the train-eval vs val gap grows while val gets worse.

Rule, on each metric logged for both splits (``cos_next`` and ``cosine`` (higher is better), ``loss``
(lower is better)); it fires when it holds on any of them: let b be the epoch where val is best. Fire when, after b,
(1) val worsened from its best by at least ``min_val_worsening`` relative, (2) train kept improving
(train at the last epoch better than at b), and (3) the gap (train better than val) at the last
epoch exceeds the gap at b by at least ``min_gap_growth`` (absolute).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.report.detectors._common import primary_split
from lvmdiag.report.events import ScheduleEvent
from lvmdiag.report.findings import DetectorResult, Evidence, Finding, RuledOut, pct, rel_change
from lvmdiag.report.history import RunHistory
from lvmdiag.results import fmt

NAME = "overfitting"
CANDIDATES = (("cos_next", 1), ("cosine", 1), ("loss", -1))


@dataclass(frozen=True)
class OverfitParams:
    """Thresholds of the overfitting rule (see the module docstring)."""

    min_val_worsening: float = 0.05
    min_gap_growth: float = 0.02


def rule(p: OverfitParams) -> str:
    return (f"after val's best epoch, val worsens by >= {p.min_val_worsening:.0%}, train keeps improving and the "
            f"train-val gap grows by >= {p.min_gap_growth:g}")


def detect(history: RunHistory, events: tuple[ScheduleEvent, ...] = (), params: OverfitParams | None = None) -> DetectorResult:
    """Flag a growing train/val gap with val getting worse.

    Returns
    -------
    DetectorResult
        ``overfitting`` finding, or silent (a ruled-out note naming, per metric, the conditions that failed).
    """
    p = params or OverfitParams()
    val_split = primary_split(history)
    train = history.eval.get("train", {})
    val = history.eval.get(val_split or "", {})
    if val_split == "train" or not train:
        return DetectorResult(NAME, rule(p), skipped="no evaluation of the train split logged (train side has losses only)")
    metrics = [(m, sign) for m, sign in CANDIDATES if m in train and m in val]
    if not metrics:
        return DetectorResult(NAME, rule(p), skipped="no metric logged for both train and val")
    verdicts = [_check(history, val_split, m, sign, train[m], val[m], p) for m, sign in metrics]
    usable = [v for v in verdicts if v is not None]
    if not usable:
        return DetectorResult(NAME, rule(p), skipped="fewer than 3 epochs with both train and val values")
    fired = next((v for v in usable if isinstance(v, Finding)), None)  # any metric the rule holds on
    if fired is not None:
        return DetectorResult(NAME, rule(p), (fired,))
    return DetectorResult(NAME, rule(p), ruled_out=tuple(usable[:1]) if len(usable) == 1 else (RuledOut(
        NAME, "Overfitting (growing train/val gap)", "; ".join(r.reason for r in usable),
        tuple(e for r in usable for e in r.evidence)),))


def _check(history: RunHistory, val_split: str, metric: str, sign: int, t: np.ndarray, v: np.ndarray,
           p: OverfitParams) -> Finding | RuledOut | None:
    """The rule on one metric: a finding, a ruled-out note naming every condition that failed, or None (too few epochs)."""
    ok = np.isfinite(t) & np.isfinite(v)
    if ok.sum() < 3:
        return None
    idx = np.flatnonzero(ok)
    b = idx[int(np.argmax(sign * v[idx]))]
    last = idx[-1]
    gap_b, gap_last = sign * (t[b] - v[b]), sign * (t[last] - v[last])
    worsening = -sign * rel_change(v[b], v[last])
    train_better = sign * (t[last] - t[b]) > 0
    eb, el = int(history.epochs[b]), int(history.epochs[last])
    evidence = (Evidence(f"{val_split} {metric} best (epoch {eb}) -> last (epoch {el})", f"{fmt(v[b])} -> {fmt(v[last])} ({pct(rel_change(v[b], v[last]))})"),
                Evidence(f"train {metric} epoch {eb} -> {el}", f"{fmt(t[b])} -> {fmt(t[last])}"),
                Evidence(f"train-{val_split} gap epoch {eb} -> {el}", f"{fmt(gap_b)} -> {fmt(gap_last)}"))
    if b != last and worsening >= p.min_val_worsening and train_better and gap_last - gap_b >= p.min_gap_growth:
        return Finding(
            NAME, "overfitting", "warning", f"Overfitting after epoch {eb}",
            f"{val_split} {metric} peaked at epoch {eb} ({fmt(v[b])}) and fell to {fmt(v[last])} by epoch {el} while train "
            f"kept improving ({fmt(t[b])} -> {fmt(t[last])}); the gap grew from {fmt(gap_b)} to {fmt(gap_last)}.",
            evidence, (eb, el), "overfitting",
            ("lvmdiag leakage --train {train} --val {val}",))
    if b == last:
        reason = f"{val_split} {metric} is at its best in the last epoch"
    else:  # name every condition of the rule that failed, with its number
        failed = []
        if worsening < p.min_val_worsening:
            failed.append(f"{val_split} {metric} worsened by {max(worsening, 0.0):.1%} from its best "
                          f"(the rule needs >= {p.min_val_worsening:.0%})")
        if not train_better:
            failed.append(f"train {metric} did not improve after epoch {eb}")
        if gap_last - gap_b < p.min_gap_growth:
            failed.append(f"the train-{val_split} gap changed by {fmt(gap_last - gap_b)} (the rule needs "
                          f">= +{p.min_gap_growth:g})")
        reason = f"on {metric}: " + "; ".join(failed)
    return RuledOut(NAME, "Overfitting (growing train/val gap)", reason, evidence)

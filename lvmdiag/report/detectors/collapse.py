"""Collapse aligned with a schedule event.

Rule: at an epoch transition e-1 -> e, a *collapse* is when more than ``majority`` of the cosine
metrics of the judged split (``cos_*``, ``cosine``, ``raw_cos_*``) fall by at least ``min_drop``
relative to their value at e-1. It is *aligned* with a schedule event when e is within ``window``
epochs of the event's epoch. It is *critical* when at least half of the dropped metrics do not get
back to ``recovery_frac`` of their value at e-1 in any of the epochs e .. e+``recovery_epochs``
(or when no later epoch was logged). A collapse with no event nearby is reported as a
warning ("sudden drop").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.report.detectors._common import cosine_metrics, primary_split
from lvmdiag.report.events import ScheduleEvent
from lvmdiag.report.findings import DetectorResult, Evidence, Finding, RuledOut, pct, rel_change
from lvmdiag.report.history import RunHistory
from lvmdiag.results import fmt

NAME = "collapse"


@dataclass(frozen=True)
class CollapseParams:
    """Thresholds of the collapse rule (see the module docstring)."""

    min_drop: float = 0.20
    majority: float = 0.5
    window: int = 1
    recovery_frac: float = 0.90
    recovery_epochs: int = 3
    split: str | None = None


def rule(p: CollapseParams) -> str:
    return (f"more than {p.majority:.0%} of the cosine metrics drop by >= {p.min_drop:.0%} from one epoch to "
            f"the next within {p.window} epoch(s) of a schedule event; critical when they do not recover to "
            f"{p.recovery_frac:.0%} of the pre-drop value within {p.recovery_epochs} epochs")


def detect(history: RunHistory, events: tuple[ScheduleEvent, ...], params: CollapseParams | None = None) -> DetectorResult:
    """Find collapses, align them with schedule events and check recovery.

    Returns
    -------
    DetectorResult
        One finding per collapsing transition (``collapse_at_event`` or ``sudden_drop``); silent
        when no transition has a majority of cosine metrics dropping by ``min_drop``.
    """
    p = params or CollapseParams()
    split = p.split or primary_split(history)
    names = cosine_metrics(history, split) if split else []
    if not names:
        return DetectorResult(NAME, rule(p), skipped="no cosine metrics logged for an evaluation split")
    values = np.vstack([history.eval[split][n] for n in names])  # (M, E)
    epochs = history.epochs
    findings: list[Finding] = []
    ruled_out: list[RuledOut] = []
    for i in range(1, epochs.size):
        before, after = values[:, i - 1], values[:, i]
        changes = np.array([rel_change(b, a) for b, a in zip(before, after)])
        dropped = np.flatnonzero(changes <= -p.min_drop)
        if dropped.size <= p.majority * len(names):
            continue
        epoch = int(epochs[i])
        near = [ev for ev in events if abs(ev.epoch - epoch) <= p.window]
        event = min(near, key=lambda ev: abs(ev.epoch - epoch)) if near else None
        later = values[:, i:i + p.recovery_epochs + 1]  # the drop epoch and the next recovery_epochs
        n_after = later.shape[1] - 1
        best_after = np.nanmax(later, axis=1)
        recovered = best_after >= p.recovery_frac * before
        n_recovered = int(np.sum(recovered[dropped]))
        not_recovered = n_recovered * 2 <= dropped.size
        evidence = []
        for j in dropped:
            evidence.append(Evidence(
                f"{split} {names[j]} epoch {int(epochs[i - 1])} -> {epoch}",
                f"{fmt(before[j])} -> {fmt(after[j])} ({pct(changes[j])})"))
        for j in dropped:
            evidence.append(Evidence(
                f"{split} {names[j]} best within {n_after} epoch(s) after / final",
                f"{fmt(best_after[j])} ({best_after[j] / before[j]:.0%} of pre-drop) / "
                f"{fmt(values[j, -1])} ({values[j, -1] / before[j]:.0%})"))
        drops = ", ".join(f"{names[j]} {pct(changes[j])}" for j in dropped)
        if event is not None:
            evidence.insert(0, Evidence("schedule event", f"{event.name} at epoch {event.epoch} ({event.detail})"))
            severity = "critical" if not_recovered else "warning"
            recovery = (f"not recovered to {p.recovery_frac:.0%} of the pre-drop values within {n_after} epoch(s)"
                        if not_recovered else f"recovered to {p.recovery_frac:.0%} within {n_after} epoch(s)")
            if 0 < n_after < p.recovery_epochs:
                recovery += f" (only {n_after} epoch(s) logged after the drop)"
            if n_after == 0:
                recovery = "no epoch after the drop was logged, so recovery is unknown"
                severity = "critical"
            where = (f"at the {event.name} event (epoch {event.epoch})" if event.epoch == epoch else
                     f"{abs(event.epoch - epoch)} epoch(s) from the {event.name} event at epoch {event.epoch}")
            final = ", ".join(f"{names[j]} {fmt(values[j, -1])} = {values[j, -1] / before[j]:.0%} of {fmt(before[j])}"
                              for j in dropped)
            findings.append(Finding(
                NAME, "collapse_at_event", severity,
                f"Collapse at epoch {epoch}, aligned with {event.name}",
                f"Between epochs {int(epochs[i - 1])} and {epoch}, {dropped.size} of {len(names)} {split} cosine "
                f"metrics dropped by >= {p.min_drop:.0%} ({drops}) {where}; {recovery}. Last epoch: {final}.",
                tuple(evidence), (int(epochs[i - 1]), epoch), "schedule_transition",
                ("lvmdiag train --train {train} --val {val} --out {run_name}_longer_warmup --warmup-epochs 5",),
            ))
        else:
            findings.append(Finding(
                NAME, "sudden_drop", "warning",
                f"Sudden drop at epoch {epoch} (no schedule event nearby)",
                f"Between epochs {int(epochs[i - 1])} and {epoch}, {dropped.size} of {len(names)} {split} cosine metrics "
                f"dropped by >= {p.min_drop:.0%} ({drops}) with no schedule event within {p.window} epoch(s).",
                tuple(evidence), (int(epochs[i - 1]), epoch), None))
    if not findings and epochs.size > 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            changes = np.diff(values, axis=1) / np.abs(values[:, :-1])
        changes = changes[np.isfinite(changes)]
        worst = float(changes.min()) if changes.size else float("nan")
        ruled_out.append(RuledOut(NAME, "A collapse at a schedule event",
                                  f"no epoch transition has a majority of {split} cosine metrics falling "
                                  f"by {p.min_drop:.0%}", (Evidence("most negative relative epoch-to-epoch change", pct(worst)),)))
    return DetectorResult(NAME, rule(p), tuple(findings), tuple(ruled_out))

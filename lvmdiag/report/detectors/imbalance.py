"""Loss-term imbalance: one term optimised, another left where it started.

Rule: over the epochs where each ``loss_*`` term is active (finite and non-zero; at least
``min_epochs`` of them), compute its relative change first -> last. The detector fires when one term
is *flat* (|change| < ``flat_tol``) while another *falls* by more than ``min_fall``. Warmup-only terms
that are switched off are not "falling"; they are excluded by the active-epoch rule. The weighted
contributions w * term at the last epoch (config ``w_<name>``) are reported when known.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.report.detectors._common import config_number, loss_terms
from lvmdiag.report.events import ScheduleEvent
from lvmdiag.report.findings import DetectorResult, Evidence, Finding, RuledOut, pct, rel_change
from lvmdiag.report.history import RunHistory
from lvmdiag.results import fmt

NAME = "loss_imbalance"


@dataclass(frozen=True)
class ImbalanceParams:
    """``flat_tol``: |relative change| below which a term is flat; ``min_fall``: fall that counts as optimised."""

    flat_tol: float = 0.05
    min_fall: float = 0.20
    min_epochs: int = 3


def rule(p: ImbalanceParams) -> str:
    return (f"one loss_* term changes by less than {p.flat_tol:.0%} (first -> last active epoch) while another "
            f"falls by more than {p.min_fall:.0%}")


def _trend(history: RunHistory, name: str, p: ImbalanceParams) -> tuple[float, float, float, int] | None:
    values = history.train_log[name]
    active = np.flatnonzero(np.isfinite(values) & (values != 0))
    if active.size < p.min_epochs:
        return None
    first, last = float(values[active[0]]), float(values[active[-1]])
    return first, last, rel_change(first, last), int(active.size)


def detect(history: RunHistory, events: tuple[ScheduleEvent, ...] = (), params: ImbalanceParams | None = None) -> DetectorResult:
    """Flag a flat loss term next to a falling one.

    Returns
    -------
    DetectorResult
        One ``loss_term_flat`` finding per flat term (naming the falling terms), or silent.
    """
    p = params or ImbalanceParams()
    trends = {n: t for n in loss_terms(history) if (t := _trend(history, n, p)) is not None}
    if len(trends) < 2:
        return DetectorResult(NAME, rule(p), skipped="fewer than two loss_* terms logged over enough epochs")
    flat = [n for n, t in trends.items() if abs(t[2]) < p.flat_tol]
    falling = [n for n, t in trends.items() if t[2] < -p.min_fall]
    findings = []
    for f in flat:
        if not falling:
            break
        ff, fl, fc, fn = trends[f]
        evidence = [Evidence(f"{f} first -> last active epoch ({fn} epochs)", f"{fmt(ff)} -> {fmt(fl)} ({pct(fc)})")]
        finite = history.train_log[f][np.isfinite(history.train_log[f])]
        evidence.append(Evidence(f"{f} range", f"{fmt(finite.min())} .. {fmt(finite.max())}"))
        parts = []
        for g in falling:
            gf, gl, gc, gn = trends[g]
            evidence.append(Evidence(f"{g} first -> last active epoch ({gn} epochs)", f"{fmt(gf)} -> {fmt(gl)} ({pct(gc)})"))
            parts.append(f"{g} fell {pct(gc)} ({fmt(gf)} -> {fmt(gl)})")
        message = (f"{f} changed by only {pct(fc)} ({fmt(ff)} -> {fmt(fl)}) while {', '.join(parts)}: the optimiser "
                   f"reduced the other term(s) and left {f} where it started.")
        wf = config_number(history, "w_" + f[5:])
        contrib = []
        for g in [f, *falling]:
            w = config_number(history, "w_" + g[5:])
            if w is not None:
                evidence.append(Evidence(f"w_{g[5:]} · {g} at the last epoch", f"{fmt(w)} × {fmt(trends[g][1])} = {fmt(w * trends[g][1])}"))
                contrib.append((g, w * trends[g][1]))
        if wf is not None and len(contrib) > 1:
            total = sum(c for _, c in contrib)
            share = contrib[0][1] / total if total else float("nan")
            evidence.append(Evidence(f"share of {f} in the weighted sum of these terms", f"{share:.1%}"))
            message += f" Weighted, {f} is {share:.1%} of these terms at the last epoch."
        if f == "loss_margin" and (m := config_number(history, "margin")) is not None and fl > m:
            message += (f" A hinge mean of {fmt(fl)} above the margin m = {fmt(m)} is only possible when some train "
                        "windows have cos_next < cos_prev (a window with cos_next >= cos_prev adds at most m).")
            evidence.append(Evidence("config margin m", m))
        findings.append(Finding(NAME, "loss_term_flat", "warning", f"{f} stayed flat while {', '.join(falling)} fell",
                                message, tuple(evidence), tuple(int(e) for e in history.epochs), "loss_balance",
                                ("lvmdiag train --train {train} --val {val} --out {run_name}_rebalanced "
                                 f"--w-{f[5:].replace('_', '-')} {2 * wf if wf else 1.0:g}",)))
    if not findings:
        return DetectorResult(NAME, rule(p), ruled_out=(RuledOut(
            NAME, "One loss term was ignored by the optimiser",
            # precise: a flat term may exist (e.g. on a short run) while no other term fell far enough
            f"no term stayed within ±{p.flat_tol:.0%} while another fell by more than {p.min_fall:.0%}"
            + (f"; {', '.join(flat)} stayed flat, but no other term fell that much over the logged epochs"
               if flat else ""),
            tuple(Evidence(f"{n} change", pct(t[2])) for n, t in trends.items())),))
    return DetectorResult(NAME, rule(p), tuple(findings))

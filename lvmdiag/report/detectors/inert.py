"""Inert mechanisms: configured, logged, and never acting.

Rules (a series is *constant* when max - min <= ``abs_tol`` + ``rel_tol`` * |mean| over at least
``min_epochs`` finite epochs):

- a learnable anchor (config ``anchor_learnable`` true) whose logged ``anchor_lambda`` is constant;
- the directional gate's ``gate_weight_mean`` constant at ``gate_weak_weight`` (every sample got the
  weak weight) or at 1.0 (none was down-weighted): the gate never discriminated. A constant mean
  strictly between the two is *not* flagged: a gate computed from each window's own data gives the
  same mean every epoch by design;
- any other logged ``*weight*`` series (not ``gate_*``, not ``*_std``) constant across all epochs;
- a warmup-only term (``loss_teacher``, configured ``w_teacher`` > 0 and ``warmup_epochs`` > 0) that is
  zero in every logged epoch, warmup epochs included;
- a weighted loss term (``w_<name>`` > 0 in the config) whose logged ``loss_<name>`` is constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.report.detectors._common import config_flag, config_number
from lvmdiag.report.events import ScheduleEvent
from lvmdiag.report.findings import DetectorResult, Evidence, Finding, RuledOut
from lvmdiag.report.history import RunHistory
from lvmdiag.results import fmt

NAME = "inert_mechanisms"


@dataclass(frozen=True)
class InertParams:
    """Tolerances of "constant" and the fewest epochs needed to call a series constant."""

    rel_tol: float = 1e-6
    abs_tol: float = 1e-9
    min_epochs: int = 3


def rule(p: InertParams) -> str:
    return (f"a configured mechanism whose logged trace is constant (range <= {p.abs_tol:g} + {p.rel_tol:g}·|mean|) "
            f"over >= {p.min_epochs} epochs: learnable anchor_lambda, gate/weight series, weighted loss terms; "
            "a warmup-only term that is zero in every epoch")


def _constant(values: np.ndarray, p: InertParams) -> tuple[bool, np.ndarray]:
    finite = values[np.isfinite(values)]
    if finite.size < p.min_epochs:
        return False, finite
    return bool(finite.max() - finite.min() <= p.abs_tol + p.rel_tol * abs(finite.mean())), finite


def detect(history: RunHistory, events: tuple[ScheduleEvent, ...] = (), params: InertParams | None = None) -> DetectorResult:
    """Find configured mechanisms whose logged traces show they never acted.

    Returns
    -------
    DetectorResult
        One finding per inert mechanism (``learnable_lambda_frozen``, ``constant_weight``,
        ``warmup_term_never_active``, ``constant_loss_term``); ruled-out notes for mechanisms that did act.
    """
    p = params or InertParams()
    log = history.train_log
    n = history.n_epochs
    findings: list[Finding] = []
    ruled: list[RuledOut] = []

    lam = log.get("anchor_lambda")
    if lam is not None and config_flag(history, "anchor_learnable"):
        const, finite = _constant(lam, p)
        if const:
            findings.append(Finding(
                NAME, "learnable_lambda_frozen", "warning", "The learnable anchor λ never moved",
                f"anchor_learnable is true, yet anchor_lambda = {fmt(finite[0])} in all {finite.size} logged epochs "
                f"(range {fmt(finite.max() - finite.min())}): the parameter got no gradient, was not in the optimiser, "
                "or is clamped. The run behaved as a fixed-λ run.",
                (Evidence("config anchor_learnable", "true"), Evidence("anchor_lambda, every epoch", finite[0]),
                 Evidence(f"anchor_lambda range over {finite.size} epochs", float(finite.max() - finite.min()))),
                tuple(int(e) for e in history.epochs), "inert_mechanism"))
        elif finite.size >= 2:
            ruled.append(RuledOut(NAME, "The learnable λ was frozen", "anchor_lambda moved",
                                  (Evidence("anchor_lambda first -> last", f"{fmt(finite[0])} -> {fmt(finite[-1])}"),)))

    for name, values in log.items():
        if "weight" not in name or name.startswith("loss") or name.endswith("_std"):
            continue
        const, finite = _constant(values, p)
        if not const:
            continue
        weak = config_number(history, "gate_weak_weight")
        meaning = ""
        if name.startswith("gate"):
            if weak is not None and abs(finite[0] - weak) <= 1e-6:
                meaning = (f" It equals gate_weak_weight = {fmt(weak)}: every sample got the weak weight, so the gate "
                           "never passed a sample at full weight (a scaled loss, not a filter).")
            elif abs(finite[0] - 1.0) <= 1e-6:
                meaning = " A mean of 1.0 means no sample was ever down-weighted: the gate filtered nothing."
            else:
                continue  # a data-determined gate has the same mean every epoch by design
        findings.append(Finding(
            NAME, "constant_weight", "warning", f"{name} is constant",
            f"{name} = {fmt(finite[0])} in all {finite.size} logged epochs (range "
            f"{fmt(finite.max() - finite.min())}).{meaning}",
            (Evidence(f"{name}, every epoch", finite[0]),) + ((Evidence("config gate_weak_weight", weak),) if meaning and weak is not None else ()),
            tuple(int(e) for e in history.epochs), "inert_mechanism"))

    teacher = log.get("loss_teacher")
    w_teacher = config_number(history, "w_teacher")
    warmup = config_number(history, "warmup_epochs")
    if teacher is not None and (w_teacher or 0) > 0 and (warmup or 0) > 0:
        finite = teacher[np.isfinite(teacher)]
        in_warmup = teacher[(history.epochs <= warmup) & np.isfinite(teacher)]
        if finite.size and np.all(np.abs(finite) <= p.abs_tol) and in_warmup.size:
            findings.append(Finding(
                NAME, "warmup_term_never_active", "warning", "The teacher term was zero even during warmup",
                f"w_teacher = {fmt(w_teacher)} for the first {int(warmup)} epochs, yet loss_teacher is 0 in all "
                f"{finite.size} logged epochs ({in_warmup.size} of them in warmup): no sample met its condition.",
                (Evidence("config w_teacher", w_teacher), Evidence("config warmup_epochs", warmup),
                 Evidence("max |loss_teacher| in warmup", float(np.max(np.abs(in_warmup))))),
                tuple(int(e) for e in history.epochs[history.epochs <= warmup]), "inert_mechanism"))
        elif in_warmup.size:
            ruled.append(RuledOut(NAME, "The teacher term never acted", "loss_teacher was non-zero in warmup",
                                  (Evidence("mean loss_teacher over warmup epochs", float(np.mean(in_warmup))),)))

    for name, values in log.items():
        if not name.startswith("loss_") or name == "loss_teacher":
            continue
        w = config_number(history, "w_" + name[len("loss_"):])
        if w is None or w <= 0:
            continue
        const, finite = _constant(values, p)
        if const:
            findings.append(Finding(
                NAME, "constant_loss_term", "warning", f"{name} never changed",
                f"{name} (weight {fmt(w)}) = {fmt(finite[0])} in all {finite.size} logged epochs: the term gave no "
                "training signal (zero gradient, e.g. a saturated hinge or a detached input).",
                (Evidence(f"config w_{name[5:]}", w), Evidence(f"{name}, every epoch", finite[0])),
                tuple(int(e) for e in history.epochs), "inert_mechanism"))
    if n == 0:  # pragma: no cover - readers refuse empty histories
        return DetectorResult(NAME, rule(p), skipped="no epochs")
    return DetectorResult(NAME, rule(p), tuple(findings), tuple(ruled))

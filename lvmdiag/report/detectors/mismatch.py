"""Train/val mismatch, after checking that the two numbers measure the same thing.

Definition check, per series that a reader would call a "margin":

- *signed margin* (cos_next - cos_prev): it takes a negative value, or it equals the same split's
  ``cos_next - cos_prev`` within ``tol`` at every epoch;
- *loss*: it is named ``loss*`` (or was logged by the training loop beside the loss terms) and is
  never negative, or it equals a logged ``loss_*`` term within ``tol`` at every epoch. The upstream
  trainer printed the prev-repel hinge mean max(0, m - cos_next + cos_prev) as the train "Margin";
- *unknown*: neither can be shown.

Rule: (1) with a signed margin on both sides, a sign conflict (train > 0 > val at the last epoch)
with a gap >= ``min_gap`` is a real train/val gap; (2) when the only train-side "margin" is a loss
and the val margin is signed, a positive train value next to a negative val value is reported as a
definition mismatch and "train is forward, val is backward" is ruled out; (3) when the train side
is unknown, the report says it cannot confirm the two are comparable. For (2) the hinge's
convexity gives numbers that *can* be compared (Jensen): the val hinge is at least
max(0, m - mean val margin), and the train signed margin is at least m - train hinge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.report.detectors._common import config_number, primary_split
from lvmdiag.report.events import ScheduleEvent
from lvmdiag.report.findings import DetectorResult, Evidence, Finding, RuledOut
from lvmdiag.report.history import RunHistory
from lvmdiag.results import fmt

NAME = "train_val_mismatch"


@dataclass(frozen=True)
class MismatchParams:
    """``tol``: equality tolerance for the definition checks (logged numbers are rounded);
    ``min_gap``: train - val margin gap that counts as a real mismatch."""

    tol: float = 2e-3
    min_gap: float = 0.02


def rule(p: MismatchParams) -> str:
    return ("before comparing a train and a val 'margin', classify each as a signed margin (negative somewhere, "
            f"or = cos_next - cos_prev within {p.tol:g}) or a loss (named loss*, never negative, or = a loss_* "
            f"term within {p.tol:g}); a train > 0 > val conflict of >= {p.min_gap:g} is a real gap only when both "
            "are signed margins")


@dataclass(frozen=True)
class Definition:
    """The outcome of the definition check for one series."""

    key: str
    label: str
    kind: str  # "signed", "loss", "unknown"
    reason: str
    values: np.ndarray


def _equal(a: np.ndarray, b: np.ndarray, tol: float) -> bool:
    both = np.isfinite(a) & np.isfinite(b)
    return bool(both.sum() >= 1 and np.all(np.abs(a[both] - b[both]) <= tol))


def classify(history: RunHistory, key: str, tol: float = 2e-3) -> Definition:
    """Classify the series ``key`` (``"val.margin"``, ``"train_log.loss_margin"``) as signed, loss or unknown."""
    group, _, name = key.partition(".")
    values = history.train_log[name] if group == "train_log" else history.eval[group][name]
    label = history.label(key)
    finite = values[np.isfinite(values)]
    negative = f"takes negative values (min {fmt(finite.min())})" if finite.size and finite.min() < 0 else ""
    if group != "train_log":
        metrics = history.eval[group]
        if "cos_next" in metrics and "cos_prev" in metrics:
            with np.errstate(invalid="ignore"):  # inf - inf in a diverged run is simply not finite
                diff = metrics["cos_next"] - metrics["cos_prev"]
            if _equal(values, diff, tol):
                both = np.isfinite(values) & np.isfinite(diff)
                err = float(np.max(np.abs(values[both] - diff[both])))
                reason = f"equals {group} cos_next - cos_prev at every epoch (max difference {err:.1g})"
                return Definition(key, label, "signed", reason + (f", {negative}" if negative else ""), values)
    if negative:
        return Definition(key, label, "signed", negative, values)
    never_neg = f"never negative over {finite.size} epochs (min {fmt(finite.min())})" if finite.size else "no values"
    if name.startswith("loss") or group == "train_log":
        return Definition(key, label, "loss", f"logged by the training loop as a loss term ('{label}'), {never_neg}", values)
    for term in history.train_log:
        if term.startswith("loss_") and _equal(values, history.train_log[term], tol):
            return Definition(key, label, "loss", f"equals the logged {term} at every epoch, {never_neg}", values)
    return Definition(key, label, "unknown", f"{never_neg}; no cos_next/cos_prev or loss term to check it against", values)


def _last(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else float("nan")


def detect(history: RunHistory, events: tuple[ScheduleEvent, ...] = (), params: MismatchParams | None = None) -> DetectorResult:
    """Compare train and val margins only after checking their definitions.

    Returns
    -------
    DetectorResult
        ``margin_definition_mismatch`` (warning) plus a ruled-out "train forward, val backward",
        ``train_val_margin_gap`` (warning) for a real gap, ``margin_definition_unknown`` (info), or silent.
    """
    p = params or MismatchParams()
    split = primary_split(history)
    if split is None or "margin" not in history.eval.get(split, {}):
        return DetectorResult(NAME, rule(p), skipped="no val margin logged")
    val = classify(history, f"{split}.margin", p.tol)
    candidates = []
    if split != "train" and "margin" in history.eval.get("train", {}):
        candidates.append(classify(history, "train.margin", p.tol))
    candidates += [classify(history, f"train_log.{n}", p.tol) for n in history.train_log
                   if "margin" in n.lower() or "margin" in history.label(f"train_log.{n}").lower()]
    if not candidates:
        return DetectorResult(NAME, rule(p), skipped="no train-side margin logged")
    v_last = _last(val.values)
    val_ev = Evidence(f"{split} margin ('{val.label}'): definition check", f"{val.kind}: {val.reason}")
    signed = [c for c in candidates if c.kind == "signed"]
    if signed and val.kind == "signed":
        t = signed[0]
        t_last = _last(t.values)
        gap = t_last - v_last
        if t_last > 0 > v_last and gap >= p.min_gap:
            return DetectorResult(NAME, rule(p), (Finding(
                NAME, "train_val_margin_gap", "warning", "Train and val margins disagree in sign (same definition)",
                f"Both are signed margins cos_next - cos_prev; at the last epoch train is {fmt(t_last)} and "
                f"{split} is {fmt(v_last)} (gap {fmt(gap)}). The model separates next from prev on train "
                f"rows but not on {split} rows: check the split (shared articles, distribution shift).",
                (Evidence(f"train margin ('{t.label}'): definition check", f"{t.kind}: {t.reason}"), val_ev,
                 Evidence("train margin, last epoch", t_last), Evidence(f"{split} margin, last epoch", v_last)),
                (int(history.epochs[-1]),), "train_val_gap",
                ("lvmdiag leakage --train {train} --val {val}", "lvmdiag diverge --train {train} --val {val}")),))
        return DetectorResult(NAME, rule(p))
    losses = [c for c in candidates if c.kind == "loss"]
    if losses and val.kind == "signed":
        t = losses[0]
        t_last = _last(t.values)
        if not (t_last > 0 > v_last):
            return DetectorResult(NAME, rule(p))
        m = config_number(history, "margin")
        finite = t.values[np.isfinite(t.values)]
        evidence = [Evidence(f"train '{t.label}': definition check", f"{t.kind}: {t.reason}"), val_ev,
                    Evidence(f"train '{t.label}' range over {finite.size} epochs", f"{fmt(finite.min())} .. {fmt(finite.max())}"),
                    Evidence(f"{split} margin range", f"{fmt(np.nanmin(val.values))} .. {fmt(np.nanmax(val.values))}")]
        message = (f"The train-side '{t.label}' ({fmt(t_last)} at the last epoch) is a loss: {t.reason}. The {split} "
                   f"margin ({fmt(v_last)}) is the signed cos_next - cos_prev ({val.reason}). They do not measure "
                   "the same thing, so their opposite signs say nothing about train vs val direction.")
        if m is not None:
            val_hinge = max(0.0, m - v_last)
            train_lb = m - t_last
            evidence += [Evidence(f"hinge margin m (config 'margin')", m),
                         Evidence(f"{split} hinge implied by the {split} margin, >= max(0, m - margin) (Jensen)", val_hinge),
                         Evidence("train signed margin implied by the train hinge, >= m - hinge", train_lb)]
            message += (f" Comparable numbers, from the hinge's convexity with m = {fmt(m)}: the {split} hinge is at least "
                        f"{fmt(val_hinge)} (vs {fmt(t_last)} logged on train), and the train signed margin is only known "
                        f"to be >= {fmt(train_lb)} (for an unweighted hinge mean), which allows a negative train margin too. "
                        f"On the one quantity both sides allow, the hinge, {split} is >= {fmt(val_hinge)} against "
                        f"{fmt(t_last)} on train: a bound, not a measured train/{split} gap.")
            if t_last > m:
                message += (f" A train hinge mean of {fmt(t_last)} > m is only possible when some train windows have "
                            "cos_next < cos_prev, since a window with cos_next >= cos_prev adds at most m.")
        return DetectorResult(NAME, rule(p), (Finding(
            NAME, "margin_definition_mismatch", "warning", "Train 'margin' is a loss; val margin is a signed margin",
            message, tuple(evidence), (int(history.epochs[-1]),), "metric_definitions",
            ("lvmdiag train --train {train} --val {val} --out {run_name}_relogged",)),),
            (RuledOut(NAME, "Train is forward, val is backward (train/val mismatch)",
                      f"the positive train number is the hinge loss '{t.label}', which is never negative by "
                      "definition; no signed train margin was logged", tuple(evidence[2:4])),))
    unknown = [c for c in candidates if c.kind == "unknown"]
    if unknown and val.kind == "signed" and _last(unknown[0].values) > 0 > v_last:
        t = unknown[0]
        return DetectorResult(NAME, rule(p), (Finding(
            NAME, "margin_definition_unknown", "info", "Cannot confirm train and val margins are comparable",
            f"Train '{t.label}' ({fmt(_last(t.values))}) is {t.reason}; {split} margin ({fmt(v_last)}) is signed. "
            "Log cos_next and cos_prev on a train subsample to compare like with like.",
            (Evidence(f"train '{t.label}': definition check", f"{t.kind}: {t.reason}"), val_ev),
            (int(history.epochs[-1]),), "metric_definitions"),))
    return DetectorResult(NAME, rule(p))

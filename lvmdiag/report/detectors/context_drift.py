"""Context drift: the anchored output moves away from the context, and how far the raw output went.

Rule: ``cos_anchor`` of the judged split falls by at least ``min_drop`` relative from its peak to a
later epoch (the lowest one after the peak). The raw-output alignment cos(q_raw, c) is read from
``raw_cos_anchor`` when logged, else recovered by inverting the anchoring formula
q' = normalize(lam q + (1 - lam) c) with the logged ``anchor_lambda`` (per epoch) or the config's
(see :mod:`lvmdiag.report.anchoring`); the anchoring floor cos(q', c) at cos(q, c) = 0 is reported,
since that much alignment the anchoring gives whatever the model outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.report.anchoring import anchored_cos, raw_cos_from_anchored
from lvmdiag.report.detectors._common import config_number, primary_split
from lvmdiag.report.events import ScheduleEvent
from lvmdiag.report.findings import DetectorResult, Evidence, Finding, RuledOut, pct, rel_change
from lvmdiag.report.history import RunHistory
from lvmdiag.results import fmt

NAME = "context_drift"


@dataclass(frozen=True)
class DriftParams:
    """``min_drop``: relative fall of cos_anchor from its peak that counts as drift."""

    min_drop: float = 0.20
    split: str | None = None


def rule(p: DriftParams) -> str:
    return (f"cos_anchor falls by >= {p.min_drop:.0%} from its peak to a later epoch; the raw output's alignment "
            "is taken from raw_cos_anchor or recovered by inverting q' = normalize(λq + (1-λ)c)")


def raw_alignment(history: RunHistory, split: str) -> tuple[np.ndarray | None, str, np.ndarray | None]:
    """(raw cos(q, c) per epoch, how it was obtained, lambda per epoch) for ``split``."""
    metrics = history.eval.get(split, {})
    lam_series = history.train_log.get("anchor_lambda")
    lam_cfg = config_number(history, "anchor_lambda")
    lam = lam_series if lam_series is not None and not np.all(np.isnan(lam_series)) else (
        np.full(history.n_epochs, lam_cfg) if lam_cfg is not None else None)
    if "raw_cos_anchor" in metrics and not np.all(np.isnan(metrics["raw_cos_anchor"])):
        return metrics["raw_cos_anchor"], "logged raw_cos_anchor", lam
    if lam is None or "cos_anchor" not in metrics:
        return None, "", lam
    how = "inverted from cos_anchor with the logged anchor_lambda" if lam is lam_series else \
        "inverted from cos_anchor with the config's anchor_lambda"
    return raw_cos_from_anchored(metrics["cos_anchor"], lam), how, lam


def detect(history: RunHistory, events: tuple[ScheduleEvent, ...] = (), params: DriftParams | None = None) -> DetectorResult:
    """Report a falling cos_anchor with the raw output's alignment before and after.

    Returns
    -------
    DetectorResult
        ``context_drift`` finding when cos_anchor falls by ``min_drop`` from its peak; silent otherwise.
    """
    p = params or DriftParams()
    split = p.split or primary_split(history)
    anchor = history.eval.get(split or "", {}).get("cos_anchor")
    if anchor is None or np.all(np.isnan(anchor)):
        return DetectorResult(NAME, rule(p), skipped="cos_anchor not logged")
    epochs = history.epochs
    finite = np.where(np.isfinite(anchor), anchor, -np.inf)
    i_peak = int(np.argmax(finite))
    if i_peak == epochs.size - 1:
        return DetectorResult(NAME, rule(p), ruled_out=(RuledOut(
            NAME, "The output drifted away from the context", "cos_anchor peaks at the last epoch",
            (Evidence(f"{split} cos_anchor final", anchor[-1]),)),))
    after = np.where(np.isfinite(anchor[i_peak + 1:]), anchor[i_peak + 1:], np.inf)
    i_low = i_peak + 1 + int(np.argmin(after))
    drop = rel_change(anchor[i_peak], anchor[i_low])
    raw, how, lam = raw_alignment(history, split)
    if not drop <= -p.min_drop:
        return DetectorResult(NAME, rule(p), ruled_out=(RuledOut(
            NAME, "The output drifted away from the context",
            f"cos_anchor never fell by {p.min_drop:.0%} from its peak",
            (Evidence(f"{split} cos_anchor peak (epoch {int(epochs[i_peak])}) -> lowest later (epoch {int(epochs[i_low])})",
                      f"{fmt(anchor[i_peak])} -> {fmt(anchor[i_low])} ({pct(drop)})"),)),))
    ep, el = int(epochs[i_peak]), int(epochs[i_low])
    evidence = [Evidence(f"{split} cos_anchor epoch {ep} (peak) -> epoch {el} (lowest after)",
                         f"{fmt(anchor[i_peak])} -> {fmt(anchor[i_low])} ({pct(drop)})"),
                Evidence(f"{split} cos_anchor final (epoch {int(epochs[-1])})", anchor[-1])]
    message = (f"The anchored output's alignment with the context mean fell from {fmt(anchor[i_peak])} "
               f"(epoch {ep}) to {fmt(anchor[i_low])} (epoch {el}), {pct(drop)}.")
    if raw is not None:
        evidence.append(Evidence(f"raw cos(q, c) epoch {ep} -> {el} ({how})",
                                 f"{fmt(raw[i_peak])} -> {fmt(raw[i_low])} ({pct(rel_change(raw[i_peak], raw[i_low]))})"))
        evidence.append(Evidence(f"raw cos(q, c) final ({how})", raw[-1]))
        message += (f" The raw output's alignment ({how}) went from {fmt(raw[i_peak])} to {fmt(raw[i_low])}: "
                    f"the model's own prediction moved away from the context and the anchoring only partly pulled it back.")
    if lam is not None and np.isfinite(lam[i_low]):
        floor = float(anchored_cos(0.0, lam[i_low]))
        evidence.append(Evidence(f"anchoring floor cos(q', c) at cos(q, c) = 0, λ = {fmt(lam[i_low])}", floor))
        message += (f" With λ = {fmt(lam[i_low])} an output orthogonal to the context still scores cos_anchor "
                    f"{fmt(floor)}, so that much alignment comes from the anchoring alone.")
        if how.startswith("inverted"):
            message += " (The inversion applied to a mean cosine is an estimate: the map is nonlinear.)"
    return DetectorResult(NAME, rule(p), (Finding(
        NAME, "context_drift", "warning", "Predictions drifted away from the context",
        message, tuple(evidence), (ep, el), "schedule_transition"
        if any(abs(e.epoch - el) <= 1 for e in events) else None),))

"""Loss accounting: does the logged total equal the weighted sum of the logged terms?

Rule: with config weights ``w_<name>`` for every logged ``loss_<name>``, compute
S_e = sum_name w_name * loss_name at each epoch e. When |loss_e - S_e| > ``rel_tol`` * max(|loss_e|, |S_e|)
in every epoch with all values finite (at least ``min_epochs``), the logged terms are not the
optimised objective (another scale, another subset of samples, a missing term or a gate weighting),
so conclusions drawn from the individual terms are uncertain; the detector says so (info). Silent
when the sum matches in any epoch or when a term's weight is unknown.

When the ratio total / S_e equals a logged weight (a ``train_log`` series named ``*weight*``, e.g.
``gate_weight_mean``) within ``match_tol`` at the last epoch, the finding names it (and in how many
epochs it matches): the whole
weighted loss was scaled by that weight, which explains the accounting (and, for a gate, is evidence
that it acts as a constant multiplier rather than a per-sample filter).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.report.detectors._common import config_number, loss_terms
from lvmdiag.report.events import ScheduleEvent
from lvmdiag.report.findings import DetectorResult, Evidence, Finding, RuledOut
from lvmdiag.report.history import RunHistory
from lvmdiag.results import fmt

NAME = "loss_accounting"


@dataclass(frozen=True)
class AccountingParams:
    """``rel_tol``: relative mismatch tolerated between the total and the weighted sum."""

    rel_tol: float = 0.10
    min_epochs: int = 2
    match_tol: float = 0.03  # relative: total / sum vs a logged weight (logs round to ~3 digits)


def rule(p: AccountingParams) -> str:
    return f"total loss differs from sum(w_i · loss_i) by more than {p.rel_tol:.0%} in every epoch"


def detect(history: RunHistory, events: tuple[ScheduleEvent, ...] = (), params: AccountingParams | None = None) -> DetectorResult:
    """Check the logged total loss against the weighted sum of its logged terms.

    Returns
    -------
    DetectorResult
        ``loss_terms_do_not_add_up`` (info) or a ruled-out note, or skipped when weights are unknown.
    """
    p = params or AccountingParams()
    total = history.train_log.get("loss")
    terms = loss_terms(history)
    weights = {t: config_number(history, "w_" + t[5:]) for t in terms}
    if total is None or not terms or any(w is None for w in weights.values()):
        return DetectorResult(NAME, rule(p), skipped="total loss, its terms or their config weights not all known")
    stack = np.vstack([weights[t] * history.train_log[t] for t in terms])
    summed = stack.sum(axis=0)
    ok = np.isfinite(total) & np.all(np.isfinite(stack), axis=0)
    if ok.sum() < p.min_epochs:
        return DetectorResult(NAME, rule(p), skipped=f"fewer than {p.min_epochs} epochs with every term finite")
    rel = np.abs(total[ok] - summed[ok]) / np.maximum(np.maximum(np.abs(total[ok]), np.abs(summed[ok])), 1e-12)
    i_last = np.flatnonzero(ok)[-1]
    formula = " + ".join(f"{fmt(weights[t])}·{t}" for t in terms)
    evidence = (Evidence(f"logged total loss at epoch {int(history.epochs[i_last])}", float(total[i_last])),
                Evidence(f"{formula} at epoch {int(history.epochs[i_last])}", float(summed[i_last])),
                Evidence("smallest relative mismatch over epochs", f"{rel.min():.0%}"))
    if np.all(rel > p.rel_tol):
        message = (
            f"At epoch {int(history.epochs[i_last])} the total loss is {fmt(float(total[i_last]))} but {formula} = "
            f"{fmt(float(summed[i_last]))} (mismatch at least {rel.min():.0%} in all {int(ok.sum())} epochs): the terms are "
            "logged on another scale or subset than the optimised loss, so per-term conclusions carry that uncertainty.")
        scale = _matching_weight(history, total, summed, ok, terms, p)
        if scale is not None:
            key, n_match = scale
            ratio, weight = float(total[i_last] / summed[i_last]), float(history.train_log[key][i_last])
            message += (f" The ratio total / sum = {fmt(ratio)} equals the logged `{key}` = {fmt(weight)} (within "
                        f"{p.match_tol:.0%} in {n_match} of {int(ok.sum())} epochs, the last included): the whole weighted "
                        "loss appears multiplied by that weight, "
                        "which explains the accounting")
            message += (" and is more evidence that the gate is a constant multiplier, not a per-sample filter."
                         if "gate" in key else ".")
            evidence += (Evidence(f"total / ({formula}) at epoch {int(history.epochs[i_last])}", ratio),
                         Evidence(f"logged {key} at epoch {int(history.epochs[i_last])}", weight))
        return DetectorResult(NAME, rule(p), (Finding(
            NAME, "loss_terms_do_not_add_up", "info", "The logged loss terms do not add up to the logged total",
            message, evidence, tuple(int(e) for e in history.epochs[ok]), None),))
    return DetectorResult(NAME, rule(p), ruled_out=(RuledOut(
        NAME, "The logged loss terms are not what was optimised", "the total equals the weighted sum of the terms", evidence),))


def _matching_weight(history: RunHistory, total: np.ndarray, summed: np.ndarray, ok: np.ndarray,
                     terms: list[str], p: AccountingParams) -> tuple[str, int] | None:
    """The logged ``*weight*`` series equal to total / sum at the last epoch where both are known, if any,
    with the number of epochs in which they agree."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = total / summed
    for key in sorted(history.train_log):
        if "weight" not in key or key in terms or key == "loss":
            continue
        w = np.asarray(history.train_log[key], dtype=float)
        both = ok & np.isfinite(w) & np.isfinite(ratio) & (np.abs(w) > 0)
        if not both.any():
            continue
        close = both & (np.abs(ratio - w) <= p.match_tol * np.abs(w))
        if close[np.flatnonzero(both)[-1]]:
            return key, int(close.sum())
    return None

"""Plateau at the InfoNCE chance level: the ranking loss never got below ln(number of candidates).

For any predictor whose logit for the true target is distributed like its logits for the other
candidates (it cannot tell them apart), E[InfoNCE] = E[logsumexp(l)] - E[l_pos] >= ln(n) (Jensen),
with equality when all logits are equal. So a ranking loss at or above ln(n) means the model ranks
the true next chunk no better than chance. Rule: the mean of ``loss_rank`` over the last ``window``
epochs (all finite) is >= (1 - ``tol``) * ln(n). n = batch_size + 1 (in-batch targets plus c_last, as
the upstream loss builds them) + ``n_random_negatives`` + 1 when ``hard_negatives`` is set; when the
config does not say how many random negatives were used, n is a lower bound of the candidate count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lvmdiag.report.detectors._common import config_number
from lvmdiag.report.events import ScheduleEvent
from lvmdiag.report.findings import DetectorResult, Evidence, Finding, RuledOut
from lvmdiag.report.history import RunHistory
from lvmdiag.results import fmt

NAME = "chance_plateau"


@dataclass(frozen=True)
class ChanceParams:
    """``tol``: relative distance below ln(n) still counted as chance; ``window``: last epochs averaged."""

    tol: float = 0.05
    window: int = 3


def rule(p: ChanceParams) -> str:
    return (f"mean InfoNCE loss over the last {p.window} epochs >= {1 - p.tol:.0%} of ln(n_candidates) "
            "(n = batch_size + 1 + random/hard negatives from the config)")


def _candidates(history: RunHistory) -> tuple[float | None, str]:
    batch = config_number(history, "batch_size")
    if batch is None:
        return None, ""
    n = batch + 1
    how = "config batch_size + 1 (in-batch targets + c_last)"
    random = config_number(history, "n_random_negatives")
    if random is not None:
        n += random
        how += f" + n_random_negatives {random:g}"
    hard = history.config.get("hard_negatives")
    if isinstance(hard, str) and hard not in ("", "none"):
        n += 1
        how += " + 1 hard negative"
    if random is None:
        how += "; a lower bound if random negatives were added"
    return n, how


def detect(history: RunHistory, events: tuple[ScheduleEvent, ...] = (), params: ChanceParams | None = None) -> DetectorResult:
    """Compare the ranking loss with ln(n_candidates).

    Returns
    -------
    DetectorResult
        ``chance_plateau`` (critical) or a ruled-out "no learning" note with the ratio to chance.
    """
    p = params or ChanceParams()
    log = history.train_log
    name = "loss_rank" if "loss_rank" in log else None
    if name is None and "loss" in log and config_number(history, "w_rank") and not any(
            (config_number(history, k) or 0) > 0 for k in ("w_margin", "w_teacher")):
        name = "loss"
    if name is None:
        return DetectorResult(NAME, rule(p), skipped="no InfoNCE ranking loss (loss_rank) logged")
    n, how = _candidates(history)
    if n is None or n < 2:
        return DetectorResult(NAME, rule(p), skipped="number of InfoNCE candidates unknown (no batch_size in the config)")
    tail = log[name][-p.window:]
    if not np.all(np.isfinite(tail)):
        return DetectorResult(NAME, rule(p), skipped=f"{name} is not finite in the last {p.window} epochs (see divergence)")
    chance = math.log(n)
    ratio = float(tail.mean()) / chance
    evidence = (Evidence(f"chance level ln({n:g}) ({how})", chance),
                Evidence(f"mean {name} over the last {tail.size} epochs", float(tail.mean())),
                Evidence(f"{name} / chance", f"{ratio:.0%}"))
    if ratio >= 1 - p.tol:
        return DetectorResult(NAME, rule(p), (Finding(
            NAME, "chance_plateau", "critical", "The ranking loss sits at the chance level",
            f"{name} averaged {fmt(float(tail.mean()))} over the last {tail.size} epochs, {ratio:.0%} of ln({n:g}) = "
            f"{fmt(chance)}: a loss at or above ln(n) is what a model that cannot tell the true next chunk from the "
            "other candidates gets, so the ranking never left the chance level.",
            evidence, tuple(int(e) for e in history.epochs[-tail.size:]), "no_learning",
            ("lvmdiag bias --train {train} --val {val}",)),))
    return DetectorResult(NAME, rule(p), ruled_out=(RuledOut(
        NAME, "The model learned nothing (InfoNCE at chance)", f"{name} is below {1 - p.tol:.0%} of ln(n): the model ranks the true next chunk above chance", evidence),))

"""Divergence: losses or metrics become NaN/Inf, usually after a loss spike.

Rule: the first epoch at which any logged loss (``loss``, ``loss_*``) or evaluation metric is *logged* as
NaN or +-Inf after having been finite is a divergence (critical); an epoch that did not log a series
(validation every other epoch, a cut last row) is not (``RunHistory.logged_nonfinite``). The largest epoch-to-epoch ratio of the
total loss before that epoch is reported; a ratio >= ``spike_ratio`` is named as the spike that
preceded it. Series that are NaN in every epoch because they were never logged are ignored; series
*logged* as NaN/Inf in every epoch (``RunHistory.never_finite``) diverged at their first epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.report.events import ScheduleEvent
from lvmdiag.report.findings import DetectorResult, Evidence, Finding, RuledOut
from lvmdiag.report.history import RunHistory
from lvmdiag.results import fmt

NAME = "divergence"


@dataclass(frozen=True)
class DivergenceParams:
    """``spike_ratio``: an epoch-to-epoch loss ratio at least this large is reported as a spike."""

    spike_ratio: float = 2.0
    #: the next-step command retrains with the run's learning rate divided by this (a runnable number, not a placeholder)
    lr_divisor: float = 10.0


def rule(p: DivergenceParams) -> str:
    return f"a loss or metric that was finite becomes NaN/Inf (critical); a prior loss jump of >= {p.spike_ratio:g}x is named"


def _key(name: str) -> str:
    """``"train loss"`` -> ``"train_log.loss"``, ``"val cos_next"`` -> ``"val.cos_next"`` (RunHistory keys)."""
    group, _, metric = name.partition(" ")
    return f"train_log.{metric}" if group == "train" and metric.startswith("loss") else f"{group}.{metric}"


def _series(history: RunHistory) -> dict[str, np.ndarray]:
    out = {f"train {n}": v for n, v in history.train_log.items() if n.startswith("loss")}
    for split, metrics in history.eval.items():
        out.update({f"{split} {n}": v for n, v in metrics.items()})
    return out


def detect(history: RunHistory, events: tuple[ScheduleEvent, ...] = (), params: DivergenceParams | None = None) -> DetectorResult:
    """Find the first epoch with a non-finite loss or metric.

    Returns
    -------
    DetectorResult
        ``diverged`` (critical) naming the epoch, the series affected and the last finite values, or silent.
    """
    p = params or DivergenceParams()
    first_bad: dict[str, int] = {}
    for name, values in _series(history).items():
        finite = np.isfinite(values)
        logged_bad = history.logged_nonfinite_mask(_key(name), values)  # an epoch that did not log it is not bad
        if not finite.any():
            if _key(name) in history.never_finite:
                first_bad[name] = int(np.argmax(logged_bad)) if logged_bad.any() else 0
            continue
        first_ok = int(np.argmax(finite))
        bad = np.flatnonzero(logged_bad[first_ok:])
        if bad.size:
            first_bad[name] = first_ok + int(bad[0])
    if not first_bad:
        return DetectorResult(NAME, rule(p), ruled_out=(RuledOut(
            NAME, "Numerical divergence", "every logged loss and metric is finite in every epoch",
            (Evidence("epochs checked", str(history.n_epochs)),)),))
    i = min(first_bad.values())
    epoch = int(history.epochs[i])
    names = sorted(n for n, j in first_bad.items() if j == i)
    evidence = [Evidence("first non-finite epoch", str(epoch)), Evidence("series non-finite there", ", ".join(names))]
    message = f"At epoch {epoch}, {len(names)} series became NaN/Inf ({', '.join(names[:6])}{'…' if len(names) > 6 else ''})."
    loss = history.train_log.get("loss")
    if loss is not None and i >= 1:
        before = loss[:i]
        ok = np.isfinite(before)
        if ok.sum():
            evidence.append(Evidence(f"last finite train loss (epoch {int(history.epochs[np.flatnonzero(ok)[-1]])})",
                                     float(before[ok][-1])))
        if ok.sum() >= 2:
            ratios = before[1:] / np.where(before[:-1] == 0, np.nan, before[:-1])
            if np.any(np.isfinite(ratios)):
                j = int(np.nanargmax(ratios))
                evidence.append(Evidence(f"largest loss ratio epoch {int(history.epochs[j])} -> {int(history.epochs[j + 1])}",
                                         f"{fmt(before[j])} -> {fmt(before[j + 1])} ({ratios[j]:.2f}x)"))
                if ratios[j] >= p.spike_ratio:
                    message += (f" It was preceded by a loss spike at epoch {int(history.epochs[j + 1])} "
                                f"({ratios[j]:.1f}x the previous epoch).")
    run_lr, lr_source = _run_lr(history)
    if run_lr is not None:
        lower = float(f"{run_lr / p.lr_divisor:.3g}")
        evidence.append(Evidence(f"learning rate for the retry ({lr_source} / {p.lr_divisor:g})",
                                 f"{run_lr:g} / {p.lr_divisor:g} = {lower:g}"))
        lr_flag = f" --lr {lower:g}"
    else:
        lr_flag = ""  # unknown run lr: no number to derive one from, so the command keeps the trainer's default
        evidence.append(Evidence("learning rate for the retry", "the run's lr is not in its config or logs"))
    return DetectorResult(NAME, rule(p), (Finding(
        NAME, "diverged", "critical", f"Training diverged at epoch {epoch}", message, tuple(evidence), (epoch,),
        "divergence", ("lvmdiag train --train {train} --val {val} --out {run_name}_lower_lr" + lr_flag,)),))


def _run_lr(history: RunHistory) -> tuple[float | None, str]:
    """The run's learning rate: the config's ``lr``, else the first finite logged ``lr``."""
    value = history.config.get("lr")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value) and value > 0:
        return float(value), "config lr"
    logged = history.train_log.get("lr")
    if logged is not None:
        finite = logged[np.isfinite(logged) & (logged > 0)]
        if finite.size:
            return float(finite[0]), "first logged lr"
    return None, ""

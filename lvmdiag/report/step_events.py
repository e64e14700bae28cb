"""Schedule events that the epoch-level config rule cannot see: step-based warmups and switched-off terms.

- ``warmup_steps`` / ``num_warmup_steps`` (>= 1) in the config, or ``warmup_ratio`` (> 0) times the
  run's total steps (``max_steps`` from the config, else steps per epoch x planned epochs), placed
  with the history's step axis (:attr:`RunHistory.steps`, the global step at each epoch's end) on the
  first epoch whose last step is past the warmup: the first epoch trained (at least partly) after it.
  Without a step axis nothing is placed. Hugging Face counts warmup steps as ceil(ratio x total).
- a logged loss term (``loss_*``, not the total) that is > 0 for one or more epochs and exactly 0 from
  some epoch on: a warmup-only term was switched off there (``warmup_end``).
"""

from __future__ import annotations

import math

import numpy as np

from lvmdiag.report.events import ScheduleEvent
from lvmdiag.report.history import RunHistory


def _number(config: dict, key: str) -> float | None:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def warmup_steps(history: RunHistory) -> tuple[int, str] | None:
    """The number of warmup steps and how it was found (None when the config sets none or it cannot be placed)."""
    cfg = history.config
    ratio, name = _number(cfg, "warmup_ratio"), "warmup_ratio"
    for key in ("warmup_steps", "num_warmup_steps"):
        value = _number(cfg, key)
        if value is not None and value >= 1:
            return int(value), f"{key} = {int(value)}"
        if value is not None:  # transformers >= 5: a float below 1 is a share of the steps (its old warmup_ratio)
            ratio, name = value, f"{key} (a ratio below 1)"
            break
    if ratio is None:
        return None
    total = _number(cfg, "max_steps")
    how = f"max_steps {total:g}" if total else ""
    steps = history.steps
    if total is None and steps is not None and history.planned_epochs and history.n_epochs:
        first = steps[0] if history.epochs[0] == 1 else np.nan
        if np.isfinite(first) and first > 0:
            total = first * history.planned_epochs
            how = f"{first:g} steps/epoch x {history.planned_epochs} epochs"
    if total is None:
        return None
    return math.ceil(ratio * total), f"{name} = {ratio:g} of {how}"


def step_events(history: RunHistory) -> list[ScheduleEvent]:
    """Events from step-based warmups and from loss terms switched off (see the module docstring)."""
    out: list[ScheduleEvent] = []
    found = warmup_steps(history)
    if found is not None and history.steps is not None:
        w, how = found
        past = np.flatnonzero(np.nan_to_num(history.steps, nan=-1.0) > w)
        if past.size:
            i = int(past[0])
            out.append(ScheduleEvent("warmup_end", int(history.epochs[i]), "config",
                                     f"{how}: step {w + 1} falls in epoch {int(history.epochs[i])} "
                                     f"(steps up to {history.steps[i]:g})"))
    for name, values in history.train_log.items():
        if not name.startswith("loss_") or values.size < 2 or not np.all(np.isfinite(values)):
            continue
        zero = values == 0
        if zero[0] or not zero[-1]:
            continue
        i = int(np.argmax(zero))
        if np.all(zero[i:]) and np.all(values[:i] > 0):
            out.append(ScheduleEvent("warmup_end", int(history.epochs[i]), "loss",
                                     f"{name} fell from {values[i - 1]:.3g} to 0 at epoch {int(history.epochs[i])} "
                                     "(a warmup-only term switched off)"))
    return out

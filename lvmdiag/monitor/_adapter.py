"""What the Lightning and Hugging Face adapters share: schedule events from the optimiser's learning rate
and the global step, so both place ``lr_change`` and ``warmup_end`` exactly as the log readers do."""

from __future__ import annotations

import math
from typing import Any

LR_REL_CHANGE = 0.01  # the same threshold as lvmdiag.report.events.schedule_events


class EventTracker:
    """``lr_change`` when the epoch's lr differs from the previous epoch's by more than 1%; ``warmup_end`` on the
    first epoch whose last global step is past ``warmup_steps`` (the rule of :mod:`lvmdiag.report.step_events`)."""

    def __init__(self, warmup_steps: int | None) -> None:
        self.warmup_steps = warmup_steps if warmup_steps and warmup_steps > 0 else None
        self.prev_lr: float | None = None
        self.prev_step: int = 0

    def events(self, lr: float | None, step: int) -> list[str]:
        out = []
        if lr is not None and self.prev_lr is not None and self.prev_lr != 0 and math.isfinite(lr) and \
                abs(lr - self.prev_lr) / abs(self.prev_lr) > LR_REL_CHANGE:
            out.append("lr_change")
        if self.warmup_steps is not None and self.prev_step <= self.warmup_steps < step:
            out.append("warmup_end")
        if lr is not None:
            self.prev_lr = lr
        self.prev_step = step
        return out


def scalar_config(values: Any) -> dict[str, Any]:
    """The JSON-scalar entries of a mapping (hyperparameters often hold objects that do not belong in a config).

    A hyperparameter the report would misread (``check_config``: e.g. a ``margin`` of 5 in another sense) is
    left out with a warning: a monitor must never stop a user's training over a name clash.
    """
    import warnings

    from lvmdiag.errors import LvmdiagError, LvmdiagWarning
    from lvmdiag.report.history import check_config

    try:
        items = dict(values).items()
    except (TypeError, ValueError):
        return {}
    out = {}
    for key, value in items:
        if not (isinstance(value, (int, float, str, bool)) or value is None):
            continue
        try:
            check_config({str(key): value}, "hyperparameters")
        except LvmdiagError as exc:
            warnings.warn(f"{exc} It is left out of the run's config.json.", LvmdiagWarning, stacklevel=2)
            continue
        out[str(key)] = value
    return out

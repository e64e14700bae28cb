"""Schedule events of a run (warmup end, learning-rate changes), from its config and its logs.

An event is placed on the first epoch trained under the new regime: with ``warmup_epochs = 2`` the
teacher term is active in epochs 1-2, so ``warmup_end`` is epoch 3 (the convention of
``metrics.jsonl``). A metric change *at* an event epoch is the change from epoch e-1 to e.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.report.history import RunHistory
from lvmdiag.results import Result, fmt

# Names a trainer may log in ``events`` that mark an outcome, not a change of schedule.
NOT_SCHEDULE = frozenset({"collapse", "diverged", "nan", "best", "checkpoint", "early_stop"})


@dataclass(frozen=True)
class ScheduleEvent(Result):
    """One schedule event.

    Attributes
    ----------
    name : ``"warmup_end"``, ``"lr_change"`` or a name logged by the trainer
    epoch : the first epoch under the new regime
    source : ``"config"`` (derived from a config key), ``"log"`` (recorded by the trainer) or
        ``"lr"`` (seen as a change of the logged learning rate)
    detail : what it is, with its numbers (e.g. ``"warmup_epochs = 2: teacher term off from epoch 3"``)
    """

    name: str
    epoch: int
    source: str
    detail: str

    def to_markdown(self) -> str:
        return f"epoch {self.epoch}: {self.name} ({self.detail})"


def schedule_events(history: RunHistory, *, lr_rel_change: float = 0.01) -> tuple[ScheduleEvent, ...]:
    """Events from the config (``warmup_epochs``; step-based warmups, see :mod:`lvmdiag.report.step_events`),
    the trainer's ``events``, the lr column and loss terms that are switched off.

    Parameters
    ----------
    history : the run
    lr_rel_change : a logged lr that changes by more than this relative amount between consecutive
        epochs is an ``lr_change`` event (unless the trainer already logged one there)

    Returns
    -------
    tuple of ScheduleEvent, sorted by epoch, one per (name, epoch)
    """
    events: dict[tuple[str, int], ScheduleEvent] = {}
    for epoch, names in sorted(history.logged_events.items()):
        for name in names:
            if name in NOT_SCHEDULE:
                continue
            events[(name, epoch)] = ScheduleEvent(name, int(epoch), "log", "recorded by the trainer")
    warmup = history.config.get("warmup_epochs")
    if isinstance(warmup, (int, float)) and not isinstance(warmup, bool) and warmup > 0:
        # epochs 1..warmup (or 0..warmup-1 in a history numbered from 0) are the warmup
        first = 0 if history.n_epochs and int(history.epochs[0]) == 0 else 1
        epoch = int(warmup) + first
        planned = history.planned_epochs
        if planned is None or epoch <= planned - 1 + first:
            w_teacher = history.config.get("w_teacher")
            what = f"teacher term (w_teacher = {fmt(w_teacher)})" if w_teacher is not None else "warmup-only terms"
            events.setdefault(("warmup_end", epoch), ScheduleEvent(
                "warmup_end", epoch, "config", f"warmup_epochs = {int(warmup)}: {what} off from epoch {epoch}"))
    lr = history.train_log.get("lr")
    if lr is not None:
        for i in range(1, lr.size):
            a, b = lr[i - 1], lr[i]
            if np.isfinite(a) and np.isfinite(b) and a != 0 and abs(b - a) / abs(a) > lr_rel_change:
                epoch = int(history.epochs[i])
                events.setdefault(("lr_change", epoch), ScheduleEvent(
                    "lr_change", epoch, "lr", f"lr {a:.3g} -> {b:.3g}"))
    from lvmdiag.report.step_events import step_events  # step-based warmups, switched-off loss terms

    for event in step_events(history):
        events.setdefault((event.name, event.epoch), event)
    return tuple(sorted(events.values(), key=lambda e: (e.epoch, e.name)))

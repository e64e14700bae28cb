"""Hugging Face adapter: :class:`LvmdiagTrainerCallback`, a ``transformers.TrainerCallback`` over
:class:`~lvmdiag.monitor.RunMonitor`.

The ``Trainer`` calls ``on_epoch_end`` *before* its epoch-end logging and evaluation, so an epoch is logged
in ``on_evaluate`` (with ``eval_strategy="epoch"``): its eval metrics, plus the epoch's entries of
``state.log_history`` (``loss``, ``learning_rate``, ``grad_norm``; the last value per name, the rule of the
``trainer_state.json`` reader), so the monitor and ``lvmdiag report`` on ``trainer_state.json`` see the same
numbers. Without per-epoch evaluation, an epoch ended (``on_epoch_end``) is logged once the Trainer has
written its end-of-epoch entries: at the next loss log, the next epoch's start or the end of training,
with the epoch's last evaluation when it evaluates by steps (the ``trainer_state.json`` rule). Events:
``lr_change`` from the logged learning rate, ``warmup_end`` from ``args.get_warmup_steps``. A critical
finding sets ``control.should_training_stop``. ``training_args.json`` (``args.to_json_string()``) is written
into ``args.output_dir`` when absent, so the trainer_state reader finds the run's settings
(``training_args.bin`` is a pickle and is never loaded). Needs ``lvmdiag[hf]``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

try:
    from transformers import TrainerCallback
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError("lvmdiag.monitor.hf needs transformers: install lvmdiag[hf] (pip install 'lvmdiag[hf]').") from None

from lvmdiag._atomic import write_text_atomic
from lvmdiag.monitor._adapter import EventTracker
from lvmdiag.monitor.monitor import EpochCheck, RunMonitor

_SUMMARY = "train_runtime"


def _epoch(value: Any) -> int:
    return max(1, math.ceil(float(value) - 1e-9))


def _per_epoch(args: Any) -> bool:
    """Whether the Trainer evaluates once per epoch (``eval_strategy="epoch"``)."""
    return str(getattr(args, "eval_strategy", getattr(args, "evaluation_strategy", "no"))).lower().endswith("epoch")


class LvmdiagTrainerCallback(TrainerCallback):
    """Live lvmdiag diagnostics for a Hugging Face ``Trainer``.

    Parameters
    ----------
    run_dir : where ``metrics.jsonl``, ``config.json`` and ``REPORT.md`` go
    config : extra settings for ``config.json`` (``lr``, ``epochs``, ``batch_size``, ``warmup_steps``,
        ``warmup_ratio``, ``max_steps`` are taken from the ``TrainingArguments``)
    data : optional val windows for the trivial baselines (see :class:`RunMonitor`)
    stop_on_critical : set ``control.should_training_stop`` when a critical finding stands
    write_training_args : write ``training_args.json`` into ``args.output_dir`` when it is absent
    monitor_kwargs : passed to :class:`RunMonitor`

    Attributes
    ----------
    monitor, checks, stopped_epoch : as in :class:`lvmdiag.monitor.lightning.LvmdiagCallback`
    """

    def __init__(self, run_dir: str | Path, config: Mapping[str, Any] | None = None, data: Any = None, *,
                 stop_on_critical: bool = True, write_training_args: bool = True, **monitor_kwargs: Any) -> None:
        self.run_dir = Path(run_dir)
        self.config = dict(config or {})
        self.data = data
        self.stop_on_critical = stop_on_critical
        self.write_training_args = write_training_args
        self.monitor_kwargs = monitor_kwargs
        self.monitor: RunMonitor | None = None
        self.checks: list[EpochCheck] = []
        self.stopped_epoch: int | None = None
        self._tracker: EventTracker | None = None
        self._logged: set[int] = set()
        self._pending: int | None = None  # an epoch ended, logged once its end-of-epoch entries are in
        self._eval: dict[int, dict[str, Any]] = {}  # epoch -> its latest evaluation (evaluations by steps)

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        warmup = int(args.get_warmup_steps(state.max_steps)) if state.max_steps and state.max_steps > 0 else None
        config = {"lr": float(args.learning_rate), "epochs": math.ceil(float(args.num_train_epochs)),
                  "batch_size": int(args.per_device_train_batch_size), "max_steps": int(state.max_steps),
                  "seed": int(args.seed)}
        ratio = getattr(args, "warmup_ratio", None)  # transformers 5 folds the ratio into warmup_steps (< 1)
        if isinstance(ratio, (int, float)) and ratio > 0:
            config["warmup_ratio"] = float(ratio)
        if warmup:
            config["warmup_steps"] = warmup
        config.update(self.config)
        if self.monitor is None:
            self.monitor = RunMonitor(self.run_dir, config=config, data=self.data, **self.monitor_kwargs)
        self._tracker = EventTracker(warmup)
        if self.write_training_args and args.output_dir:
            path = Path(args.output_dir) / "training_args.json"
            if not path.exists():
                write_text_atomic(path, args.to_json_string())

    def _log(self, state: Any, control: Any, epoch: int, eval_metrics: Mapping[str, Any]) -> None:
        if self.monitor is None or self._tracker is None or epoch in self._logged:
            return
        metrics: dict[str, Any] = {}
        for entry in state.log_history:  # the epoch's training logs, the last value per name
            if _SUMMARY in entry or "epoch" not in entry or _epoch(entry["epoch"]) != epoch:
                continue
            metrics.update({k: v for k, v in entry.items() if k not in ("epoch", "step")})
        metrics.update({k: v for k, v in eval_metrics.items() if k not in ("epoch", "step")})
        lr = metrics.get("learning_rate")
        lr = float(lr) if isinstance(lr, (int, float)) else None
        step = int(state.global_step)
        check = self.monitor.log_epoch(epoch, metrics, self._tracker.events(lr, step), step=step)
        self._logged.add(epoch)
        self.checks.append(check)
        if check.should_stop and self.stop_on_critical:
            control.should_training_stop = True
            self.stopped_epoch = epoch

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Mapping[str, Any] | None = None,
                    **kwargs: Any) -> None:
        if state.epoch is None:
            return
        if _per_epoch(args):
            self._log(state, control, _epoch(state.epoch), dict(metrics or {}))
        else:  # evaluations by steps: the epoch's last one is logged with the epoch (the trainer_state rule)
            self._eval[_epoch(state.epoch)] = dict(metrics or {})

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not _per_epoch(args) and state.epoch is not None:
            # the Trainer logs the epoch's loss (logging_strategy="epoch") and evaluates after this hook:
            # the epoch is logged at the next log, the next epoch's start or the end of training
            self._pending = _epoch(state.epoch)

    def on_log(self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None,
               **kwargs: Any) -> None:
        if self._pending is not None and logs and "loss" in logs:  # the epoch's own training-loss entry
            self._flush(state, control)

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._flush(state, control)

    def _flush(self, state: Any, control: Any) -> None:
        if self._pending is not None:
            epoch, self._pending = self._pending, None
            self._log(state, control, epoch, self._eval.pop(epoch, {}))

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._flush(state, control)
        if self.monitor is not None and not self.monitor.closed:
            self.monitor.close()

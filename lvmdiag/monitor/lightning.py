"""PyTorch Lightning adapter: :class:`LvmdiagCallback`, a thin layer over :class:`~lvmdiag.monitor.RunMonitor`.

Per epoch: the validation metrics are what ``trainer.callback_metrics`` gained during that epoch's
validation (read in ``on_validation_end``, after the module's own epoch-end logs; the sanity check is
skipped), and the epoch is logged in ``on_train_epoch_end``, when Lightning has also reduced the
epoch's training metrics. An epoch without validation (``check_val_every_n_epoch`` > 1) logs none:
``callback_metrics`` would still hold the previous validation's values. The learning rate
is the first optimiser's at the start of the epoch (what ``LearningRateMonitor(logging_interval="epoch")``
logs); ``lr_change`` and ``warmup_end`` (from ``warmup_steps`` or the module's hparams ``warmup_steps`` /
``num_warmup_steps`` / ``warmup_ratio`` x ``trainer.estimated_stepping_batches``) are recorded as events.
On a critical finding the callback sets ``trainer.should_stop`` (unless ``stop_on_critical=False``).
Under multi-process training (DDP) only process 0 logs and writes; every process takes its stop
decision (``strategy.broadcast``). Needs ``lvmdiag[lightning]``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

try:
    from lightning.pytorch.callbacks import Callback
except ImportError:  # pragma: no cover - depends on the environment
    try:
        from pytorch_lightning.callbacks import Callback  # the older package name
    except ImportError:
        raise ImportError("lvmdiag.monitor.lightning needs PyTorch Lightning: install lvmdiag[lightning] "
                          "(pip install 'lvmdiag[lightning]').") from None

from lvmdiag.monitor._adapter import EventTracker, scalar_config
from lvmdiag.monitor.monitor import EpochCheck, RunMonitor


def _epoch_values(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """callback_metrics without Lightning's per-step twins; ``<name>_epoch`` read as ``<name>``."""
    out = {k: v for k, v in metrics.items() if not (k.endswith("_step") and f"{k[:-5]}_epoch" in metrics)}
    for k in [k for k in out if k.endswith("_epoch")]:
        out[k[:-6]] = out.pop(k)
    return out


class LvmdiagCallback(Callback):
    """Live lvmdiag diagnostics for a Lightning ``Trainer``.

    Parameters
    ----------
    run_dir : where ``metrics.jsonl``, ``config.json`` and ``REPORT.md`` go
    config : extra settings for ``config.json`` (the module's scalar hparams and ``max_epochs`` are added)
    data : optional val windows for the trivial baselines (see :class:`RunMonitor`)
    warmup_steps : optimiser steps of warmup (default: from the hparams, see the module docstring)
    stop_on_critical : set ``trainer.should_stop`` when a critical finding stands
    monitor_kwargs : passed to :class:`RunMonitor` (``figures``, ``detector_params``, ``resume``)

    Attributes
    ----------
    monitor : the :class:`RunMonitor` (after ``fit`` starts)
    checks : one :class:`EpochCheck` per logged epoch
    stopped_epoch : the epoch at which it stopped training, or None
    """

    def __init__(self, run_dir: str | Path, config: Mapping[str, Any] | None = None, data: Any = None, *,
                 warmup_steps: int | None = None, stop_on_critical: bool = True, **monitor_kwargs: Any) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.config = dict(config or {})
        self.data = data
        self.warmup_steps = warmup_steps
        self.stop_on_critical = stop_on_critical
        self.monitor_kwargs = monitor_kwargs
        self.monitor: RunMonitor | None = None
        self.checks: list[EpochCheck] = []
        self.stopped_epoch: int | None = None
        self._val: dict[str, Any] = {}
        self._val_keys: set[str] = set()  # keys any validation epoch has logged
        self._before_val: dict[str, Any] = {}
        self._lr: float | None = None
        self._tracker: EventTracker | None = None

    # -- helpers ----------------------------------------------------------------------------------

    def _warmup(self, trainer: Any, hparams: Mapping[str, Any]) -> int | None:
        if self.warmup_steps is not None:
            return int(self.warmup_steps)
        for key in ("warmup_steps", "num_warmup_steps"):
            value = hparams.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                return int(value)
        ratio = hparams.get("warmup_ratio")
        if isinstance(ratio, (int, float)) and not isinstance(ratio, bool) and ratio > 0:
            total = trainer.estimated_stepping_batches
            if isinstance(total, (int, float)) and math.isfinite(total):
                return math.ceil(ratio * total)
        return None

    @staticmethod
    def _current_lr(trainer: Any) -> float | None:
        if not trainer.optimizers:
            return None
        return float(trainer.optimizers[0].param_groups[0]["lr"])

    # -- hooks ------------------------------------------------------------------------------------

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:  # one writer under DDP: the other processes only take its stop decision
            return
        hparams = scalar_config(getattr(pl_module, "hparams", {}) or {})
        warmup = self._warmup(trainer, hparams)
        config = {**hparams, **self.config}
        if trainer.max_epochs and trainer.max_epochs > 0 and "epochs" not in config:
            config["epochs"] = int(trainer.max_epochs)
        if warmup is not None:
            config.setdefault("warmup_steps", warmup)
        if self.monitor is None:
            self.monitor = RunMonitor(self.run_dir, config=config, data=self.data, **self.monitor_kwargs)
        self._tracker = EventTracker(warmup)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._lr = self._current_lr(trainer)
        self._val = {}

    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        self._before_val = dict(trainer.callback_metrics)

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        # after every validation_epoch_end hook (the module's own logs included): what this validation
        # logged is what it added or replaced (Lightning stores a new value object)
        now = dict(trainer.callback_metrics)
        fresh = {k: v for k, v in now.items() if k not in self._before_val or self._before_val[k] is not v}
        self._val_keys |= set(fresh)
        if not trainer.sanity_checking:  # the sanity check's keys are validation keys; its values are not an epoch's
            self._val = fresh

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        epoch = int(trainer.current_epoch) + 1
        stop = self._log_epoch(trainer, epoch) if trainer.is_global_zero else False
        # every process takes process 0's decision (a stop on one process alone would hang the others)
        if trainer.strategy.broadcast(stop, src=0):
            trainer.should_stop = True
            self.stopped_epoch = epoch

    def _log_epoch(self, trainer: Any, epoch: int) -> bool:
        """Log the epoch on process 0; True when a critical finding should stop training."""
        if self.monitor is None or self._tracker is None:
            return False
        # callback_metrics keeps the last validation's values through epochs that do not validate
        # (check_val_every_n_epoch > 1): validation values come only from this epoch's own validation
        train = {k: v for k, v in trainer.callback_metrics.items() if k not in self._val_keys}
        metrics = _epoch_values({**self._val, **train})
        metrics.pop("lr", None)
        if self._lr is not None:
            metrics["lr"] = self._lr
        step = int(trainer.global_step)
        check = self.monitor.log_epoch(epoch, metrics, self._tracker.events(self._lr, step), step=step)
        self.checks.append(check)
        return bool(check.should_stop and self.stop_on_critical)

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor is not None and not self.monitor.closed:
            self.monitor.close()

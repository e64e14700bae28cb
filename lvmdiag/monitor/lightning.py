"""PyTorch Lightning adapter: :class:`LvmdiagCallback`, a thin layer over :class:`~lvmdiag.monitor.RunMonitor`.

Per epoch: the validation metrics are read from ``trainer.callback_metrics`` in
``on_validation_epoch_end`` (the sanity check is skipped), and the epoch is logged in
``on_train_epoch_end``, when Lightning has also reduced the epoch's training metrics. The learning rate
is the first optimiser's at the start of the epoch (what ``LearningRateMonitor(logging_interval="epoch")``
logs); ``lr_change`` and ``warmup_end`` (from ``warmup_steps`` or the module's hparams ``warmup_steps`` /
``num_warmup_steps`` / ``warmup_ratio`` x ``trainer.estimated_stepping_batches``) are recorded as events.
On a critical finding the callback sets ``trainer.should_stop`` (unless ``stop_on_critical=False``).
Needs ``lvmdiag[lightning]``.
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

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        self._val = dict(trainer.callback_metrics)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor is None or self._tracker is None:
            return
        metrics = _epoch_values({**self._val, **dict(trainer.callback_metrics)})
        metrics.pop("lr", None)
        if self._lr is not None:
            metrics["lr"] = self._lr
        step = int(trainer.global_step)
        epoch = int(trainer.current_epoch) + 1
        check = self.monitor.log_epoch(epoch, metrics, self._tracker.events(self._lr, step), step=step)
        self.checks.append(check)
        if check.should_stop and self.stop_on_critical:
            trainer.should_stop = True
            self.stopped_epoch = epoch

    def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
        if self.monitor is not None and not self.monitor.closed:
            self.monitor.close()

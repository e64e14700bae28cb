"""Live diagnostics inside any training loop.

- :class:`RunMonitor`: ``log_epoch(epoch, metrics, events=())`` appends to ``metrics.jsonl``, runs the
  per-epoch detectors and writes ``REPORT.md`` the moment one fires; ``close()`` writes the final report.
- :func:`window_metrics` / :class:`WindowMetrics`: cos_next, cos_prev, margin, cos_anchor of predictions
  with the definitions of ``lvmdiag evaluate`` (numpy or torch).
- Adapters (optional extras, imported only when used): :mod:`lvmdiag.monitor.lightning`
  (``LvmdiagCallback``, needs ``lvmdiag[lightning]``) and :mod:`lvmdiag.monitor.hf`
  (``LvmdiagTrainerCallback``, needs ``lvmdiag[hf]``).
"""

from lvmdiag.monitor.metrics import WindowMetrics, window_metrics
from lvmdiag.monitor.monitor import LIVE_DETECTORS, EpochCheck, RunMonitor, epoch_record

__all__ = ["LIVE_DETECTORS", "EpochCheck", "RunMonitor", "WindowMetrics", "epoch_record", "window_metrics"]

"""Live diagnostics for any training loop: one ``metrics.jsonl`` line per epoch, the per-epoch detectors
right after it, and the run report written the moment one of them fires.

The run directory follows the contract of ``lvmdiag train`` (docs/ARCHITECTURE.md): ``config.json`` at
the start, ``metrics.jsonl`` appended atomically after every epoch, optional ``baselines.json``, and
``REPORT.md`` + ``report.json`` (+ ``REPORT_curves.png``) from :func:`lvmdiag.report.write_run_report`,
so ``lvmdiag report RUN_DIR`` later reads exactly what the monitor judged.

Per-epoch detectors (:data:`LIVE_DETECTORS`): collapse at a schedule event, NaN/divergence, inert
mechanisms, chance plateau, and the train/val metric-definition check. The others (overfitting, loss
imbalance, context drift, baselines) need the whole run and run in :meth:`RunMonitor.close`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from lvmdiag._atomic import append_jsonl_atomic, write_json_atomic
from lvmdiag.errors import InputError
from lvmdiag.report.detectors import chance, collapse, divergence, inert, mismatch
from lvmdiag.report.findings import Finding
from lvmdiag.report.history import check_config, read_lvmdiag_run
from lvmdiag.results import Result, to_jsonable

LIVE_DETECTORS = (collapse, divergence, inert, chance, mismatch)
MONITOR_FORMAT = "lvmdiag-monitor/1"
_STOP = ("critical",)


@dataclass(frozen=True)
class EpochCheck(Result):
    """What the detectors said after one epoch.

    Attributes
    ----------
    epoch : the epoch just logged
    findings : every finding of the per-epoch detectors on the run so far
    new : the findings not reported at an earlier epoch (keyed by code and epochs)
    report_path : ``REPORT.md`` when it was (re)written at this epoch, else None
    detector_seconds : wall time of reading the history and running the detectors
    """

    epoch: int
    findings: tuple[Finding, ...]
    new: tuple[Finding, ...]
    report_path: str | None
    detector_seconds: float

    @property
    def critical(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "critical")

    @property
    def should_stop(self) -> bool:
        """True when a critical finding stands: the loop should stop (or at least alert)."""
        return bool(self.critical)

    def to_markdown(self) -> str:
        if not self.findings:
            return f"epoch {self.epoch}: no finding."
        lines = [f"epoch {self.epoch}: {len(self.findings)} finding(s)" +
                 (f", report written to {self.report_path}" if self.report_path else "")]
        return "\n".join(lines + [f"- {f.title} ({f.severity})" for f in self.findings])


def _number(value: Any) -> float | str | None:
    """A float from numbers, numpy or torch scalars; JSON has no NaN/Inf, so they are written as strings
    ("NaN", "Infinity", "-Infinity") that the run reader reads back as numbers (a diverged epoch stays visible)."""
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu()
        if value.numel() != 1:
            return None
        value = value.item()
    if isinstance(value, np.ndarray):
        if value.size != 1:
            return None
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def epoch_record(epoch: int, metrics: Mapping[str, Any], events: Iterable[str] = (), *,
                 step: float | None = None, time_s: float | None = None) -> dict[str, Any]:
    """One ``metrics.jsonl`` record from flat logged names (``val/cos_next``, ``eval_loss``, ``lr``, ...,
    mapped by :mod:`lvmdiag.report.logs.names`) or from the contract's own nesting (``train_loss``, ``eval``)."""
    from lvmdiag.report.logs.names import map_names

    record: dict[str, Any] = {"epoch": int(epoch)}
    train: dict[str, Any] = {}
    evals: dict[str, dict[str, Any]] = {}
    flat = dict(metrics)
    nested_train = flat.pop("train_loss", None) if isinstance(flat.get("train_loss"), Mapping) else None
    nested_eval = flat.pop("eval", None) if isinstance(flat.get("eval"), Mapping) else None
    for name, value in (nested_train or {}).items():
        train[str(name)] = _number(value)
    for split, values in (nested_eval or {}).items():
        if not isinstance(values, Mapping):
            raise InputError(f"metrics['eval']['{split}'] must map metric names to numbers; got {type(values).__name__}.")
        evals.setdefault(str(split), {}).update({str(k): _number(v) for k, v in values.items()})
    for name, key in map_names(str(n) for n in flat).items():
        value = _number(flat[name])
        if value is None:
            continue
        group, _, metric = key.partition(".")
        if group == "train_log":
            if metric in ("lr", "time_s"):
                record[metric] = value
            else:
                train[metric] = value
        else:
            evals.setdefault(group, {})[metric] = value
    if time_s is not None:
        record["time_s"] = float(time_s)
    if step is not None:
        record["step"] = int(step)
    record["events"] = [str(e) for e in events]
    record["train_loss"] = {k: v for k, v in train.items() if v is not None}
    record["eval"] = {s: {k: v for k, v in m.items() if v is not None} for s, m in evals.items()}
    return record


def _baselines(data: Any, k: int) -> dict[str, Any]:
    """copy_last and mean_context on the val windows, scored by the one evaluation function."""
    from lvmdiag.train.baselines import copy_last, mean_context
    from lvmdiag.train.evaluate import evaluate

    if isinstance(data, (str, Path)):
        from lvmdiag.data.readers import load_sequences

        data = load_sequences(data, k=k)
    if hasattr(data, "contexts") and hasattr(data, "targets"):
        contexts, targets = data.contexts, data.targets
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        contexts, targets = data
    else:
        raise InputError("data= must be a sequence file path, a SequenceSet or a (contexts, targets) pair of arrays.")
    contexts = np.asarray(contexts, dtype=np.float32)
    targets = np.asarray(targets, dtype=np.float32)
    if contexts.ndim != 3 or targets.shape != (contexts.shape[0], contexts.shape[2]) or contexts.shape[0] == 0:
        raise InputError(f"data=: contexts must be (N, K, D) and targets (N, D) with N > 0; got {contexts.shape} "
                         f"and {targets.shape}.")
    return {"val": {name: evaluate(fn, contexts, targets).to_dict() for name, fn in
                    (("copy_last", copy_last), ("mean_context", mean_context))}}


def _key(f: Finding) -> tuple[str, str, tuple[int, ...]]:
    """When a finding counts as new: a collapse or divergence at other epochs is a new event; the other
    detectors' findings cover a growing span of epochs, so only their code and severity count."""
    return f.code, f.severity, f.epochs if f.detector in (collapse.NAME, divergence.NAME) else ()


class RunMonitor:
    """Log epochs from any training loop, judge them at once, and write the run report when something fires.

    Parameters
    ----------
    run_dir : the run directory (created; a directory that already holds ``metrics.jsonl`` is refused
        unless ``resume``)
    config : the run's settings (``lr``, ``epochs``, ``batch_size``, ``warmup_steps``/``warmup_epochs``,
        loss weights ...), written to ``config.json``; the detectors read it
    data : optional val windows (a sequence file, a ``SequenceSet`` or ``(contexts, targets)``): the
        trivial-predictor baselines are computed once from them into ``baselines.json``
    resume : append to an existing run directory instead of refusing it
    figures : draw ``REPORT_curves.png`` with each report
    detector_params : per-detector thresholds (detector name -> its ``*Params``)
    k : window length when ``data`` is an article store

    Examples
    --------
    >>> monitor = RunMonitor("runs/mine", config={"lr": 1e-3, "epochs": 20, "warmup_epochs": 2})  # doctest: +SKIP
    >>> check = monitor.log_epoch(1, {"train_loss": 0.9, "val/cos_next": 0.41, "val/cos_prev": 0.38})  # doctest: +SKIP
    >>> if check.should_stop: ...  # doctest: +SKIP
    """

    def __init__(self, run_dir: str | Path, config: Mapping[str, Any] | None = None, data: Any = None, *,
                 resume: bool = False, figures: bool = True, detector_params: Mapping[str, Any] | None = None,
                 k: int = 5) -> None:
        self.run_dir = Path(run_dir)
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise InputError(f"run_dir {self.run_dir} is a file, not a directory.")
        metrics = self.run_dir / "metrics.jsonl"
        if metrics.exists() and not resume:
            raise InputError(f"{metrics} already exists; pass resume=True to continue that run or choose a new "
                             "run directory (a run is never overwritten).")
        cfg = dict(to_jsonable(dict(config or {})))
        if "format" not in cfg:
            cfg["format"] = MONITOR_FORMAT
        check_config(cfg, "RunMonitor config")
        self.config = cfg
        self.figures = figures
        self.detector_params = dict(detector_params or {})
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not (resume and (self.run_dir / "config.json").exists()):
            write_json_atomic(self.run_dir / "config.json", cfg)
        if data is not None and not (resume and (self.run_dir / "baselines.json").exists()):
            write_json_atomic(self.run_dir / "baselines.json", to_jsonable(_baselines(data, k)))
        self._seen: set[tuple[str, str, tuple[int, ...]]] = set()
        self._last_epoch: int | None = None
        if resume and metrics.exists():
            history = read_lvmdiag_run(self.run_dir)
            self._last_epoch = int(history.epochs[-1]) if history.n_epochs else None
        self.closed = False
        self.last_check: EpochCheck | None = None

    def log_epoch(self, epoch: int, metrics: Mapping[str, Any], events: Iterable[str] = (), *,
                  step: float | None = None, time_s: float | None = None) -> EpochCheck:
        """Append one epoch, run the per-epoch detectors, write the report when a new finding appears.

        Parameters
        ----------
        epoch : the finished epoch (counting from 1, strictly increasing)
        metrics : flat names (``train_loss``, ``val/cos_next``, ``eval_loss``, ``lr``, ``loss_rank`` ...; the
            table in :mod:`lvmdiag.report.logs.names`) or the contract's ``{"train_loss": {...}, "eval": {split: {...}}}``;
            values may be numbers, numpy or torch scalars
        events : schedule events that start at this epoch (``"warmup_end"``, ``"lr_change"``, ...)
        step : the global optimiser step at the end of the epoch (places ``warmup_steps`` events)
        time_s : the epoch's wall time

        Returns
        -------
        EpochCheck
            ``findings``, ``new``, ``report_path`` (when written now), ``should_stop`` (a critical finding).
        """
        if self.closed:
            raise InputError("this RunMonitor was closed; open a new one (resume=True) to log more epochs.")
        if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
            raise InputError(f"epoch must be a whole number >= 0; got {epoch!r}.")
        if self._last_epoch is not None and epoch <= self._last_epoch:
            raise InputError(f"epoch {epoch} was logged after epoch {self._last_epoch}; epochs must increase.")
        append_jsonl_atomic(self.run_dir / "metrics.jsonl", epoch_record(epoch, metrics, events, step=step, time_s=time_s))
        self._last_epoch = int(epoch)
        t0 = time.perf_counter()
        findings = self.detect()
        seconds = time.perf_counter() - t0
        new = tuple(f for f in findings if _key(f) not in self._seen)
        self._seen.update(_key(f) for f in new)
        report_path = None
        if new:
            report_path = str(self.write_report().get("markdown"))
        self.last_check = EpochCheck(int(epoch), findings, new, report_path, seconds)
        return self.last_check

    def detect(self) -> tuple[Finding, ...]:
        """The per-epoch detectors' findings on the run as logged so far (nothing written)."""
        from lvmdiag.report.events import schedule_events

        history = read_lvmdiag_run(self.run_dir)
        events = schedule_events(history)
        results = [m.detect(history, events, params=self.detector_params.get(m.NAME)) for m in LIVE_DETECTORS]
        return tuple(f for r in results for f in r.findings)

    def write_report(self) -> dict[str, Any]:
        """Write ``REPORT.md`` + ``report.json`` (+ PNG) now, with every detector; returns the paths and status."""
        from lvmdiag.report import write_run_report

        report = write_run_report(self.run_dir, figures=self.figures, analyses=(),
                                  detector_params=self.detector_params or None)
        return {"markdown": self.run_dir / "REPORT.md", "json": self.run_dir / "report.json", "status": report.status}

    def close(self):
        """Write the final report (every detector, the whole run) and return it (None when no epoch was logged)."""
        self.closed = True
        if self._last_epoch is None:
            return None
        from lvmdiag.report import write_run_report

        return write_run_report(self.run_dir, figures=self.figures, analyses=(),
                                detector_params=self.detector_params or None)

    def __enter__(self) -> RunMonitor:
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self.closed:
            self.close()

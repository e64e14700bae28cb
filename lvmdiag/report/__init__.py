"""Run failure reports: read a run's per-epoch history, run the detectors, compose and write a report.

Public entry points:

- :func:`build_run_report` -> :class:`RunReport` (nothing written);
- :func:`write_run_report` writes ``REPORT.md``, ``report.json`` and a PNG of the curves (by default
  into the run directory, atomically; the run's own files are never overwritten). The trainer calls
  ``write_run_report(run_dir)`` at the end of a run and when it detects a collapse.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from lvmdiag._atomic import write_json_atomic, write_text_atomic
from lvmdiag.results import with_schema
from lvmdiag.errors import InputError
from lvmdiag.report.compose import RunReport, compose_report
from lvmdiag.report.data import DEFAULT_ANALYSES, DataContext, gather_data
from lvmdiag.report.detectors import HISTORY_DETECTORS, baselines as baselines_detector, data_evidence
from lvmdiag.report.events import ScheduleEvent, schedule_events
from lvmdiag.report.findings import DetectorResult, Evidence, Finding, RuledOut
from lvmdiag.report.history import FORMATS, RunHistory, read_run_history

PathLike = str | os.PathLike[str]
ProgressCallback = Callable[[int, int], None]

__all__ = ["FORMATS", "DataContext", "DetectorResult", "Evidence", "Finding", "RunHistory", "RunReport", "RuledOut",
           "ScheduleEvent", "build_run_report", "read_run_history", "run_detectors", "schedule_events",
           "write_run_report"]


def run_detectors(history: RunHistory, events: tuple[ScheduleEvent, ...], data: DataContext | None = None,
                  detector_params: Mapping[str, Any] | None = None) -> tuple[DetectorResult, ...]:
    """Run every detector on ``history`` (and the data context, when given).

    ``detector_params`` maps a detector name (e.g. ``"collapse"``) to its ``*Params`` instance.
    """
    params = dict(detector_params or {})
    results = [module.detect(history, events, params=params.get(module.NAME)) for module in HISTORY_DETECTORS]
    data = data or DataContext(paths={})
    results.append(baselines_detector.detect(history, events, data.baselines, params=params.get(baselines_detector.NAME)))
    results.append(data_evidence.detect(history, events, data.signals))
    return tuple(results)


def build_run_report(run_dir: PathLike, *, train: PathLike | None = None, val: PathLike | None = None, k: int = 5,
                     allow_pickle: bool = False, rng: Any = 0, progress: ProgressCallback | None = None,
                     fmt: str = "auto", analyses: Sequence[str] = DEFAULT_ANALYSES,
                     detector_params: Mapping[str, Any] | None = None,
                     history: RunHistory | None = None) -> RunReport:
    """Read a run, run the detectors and compose the report (no file is written).

    Parameters
    ----------
    run_dir : a run directory (lvmdiag, upstream P7, older histories, CSV/JSONL, a stdout log) or one history file
    train, val : data files overriding the config's ``train_npz`` / ``val_npz`` (optional)
    k : window length when the data is an article store
    allow_pickle : let the data reader load object arrays (only for trusted files)
    rng : seed for the data analyzers' resampling
    progress : optional ``callback(done, total)`` for the data analyses
    fmt : ``"auto"`` or a history format (see :data:`FORMATS`)
    analyses : data analyses to run when data is readable ("bias", "leakage", "divergence", "direction")
    detector_params : per-detector thresholds, detector name -> its ``*Params``
    history : the run's history when the caller has read it already (``run_dir`` is then not read again)

    Returns
    -------
    RunReport
        status, verdict, final metrics, epoch table, findings, ranked causes, ruled-out hypotheses,
        next steps, data context.

    Raises
    ------
    RunDirError
        The run directory is missing, empty or unreadable.
    InputError
        An explicit ``train``/``val`` path does not exist or cannot be read.
    """
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng < 0:
        raise InputError(f"--seed must be a whole number >= 0; got {rng}.")
    if history is None:
        history = read_run_history(run_dir, fmt=fmt)
    events = schedule_events(history)
    data = gather_data(history, train=train, val=val, k=k, allow_pickle=allow_pickle, rng=rng, progress=progress,
                       analyses=analyses)
    return compose_report(history, events, run_detectors(history, events, data, detector_params), data)


def write_run_report(run_dir: PathLike, *, out: PathLike | None = None, json_path: PathLike | None = None,
                     train: PathLike | None = None, val: PathLike | None = None, k: int = 5,
                     allow_pickle: bool = False, rng: Any = 0, progress: ProgressCallback | None = None,
                     fmt: str = "auto", figures: bool = True, analyses: Sequence[str] = DEFAULT_ANALYSES,
                     detector_params: Mapping[str, Any] | None = None,
                     history: RunHistory | None = None) -> RunReport:
    """Build the report and write it: markdown, JSON twin and a PNG of the curves, each atomically.

    Parameters
    ----------
    run_dir : as in :func:`build_run_report`
    out : markdown path (default ``RUN_DIR/REPORT.md``); the PNG ``<stem>_curves.png`` goes next to it
    json_path : JSON path (default ``RUN_DIR/report.json`` when ``out`` is not given; with ``out`` given
        and no ``json_path``, no JSON is written)
    figures : write the PNG (and link it from the markdown)
    other parameters : as in :func:`build_run_report`

    Returns
    -------
    RunReport
        With ``figures`` holding the PNG name relative to the markdown.

    Raises
    ------
    InputError
        When an output path is one of the run's input files (they are never overwritten).
    """
    history_dir = Path(run_dir) if Path(run_dir).is_dir() else Path(run_dir).parent
    if history is None:  # read once: the report and its figure both use it
        history = read_run_history(run_dir, fmt=fmt)
    report = build_run_report(run_dir, train=train, val=val, k=k, allow_pickle=allow_pickle, rng=rng,
                              progress=progress, fmt=fmt, analyses=analyses, detector_params=detector_params,
                              history=history)
    md_path = Path(out) if out is not None else history_dir / "REPORT.md"
    if json_path is None and out is None:
        json_path = history_dir / "report.json"
    png_path = md_path.with_name(f"{md_path.stem}_curves.png") if figures else None
    inputs = {Path(f).resolve() for f in report.source_files}
    targets = [Path(t) for t in (md_path, json_path, png_path) if t is not None]
    for target in targets:
        if target.resolve() in inputs:
            raise InputError(f"output {target} is one of the run's input files; choose another path "
                             "(inputs are never overwritten).")
        if target.is_dir():
            raise InputError(f"output {target} is a directory; give a file path (e.g. {target / 'REPORT.md'}).")
    if len({t.resolve() for t in targets}) < len(targets):
        raise InputError(f"the markdown, JSON and PNG outputs must be different files; got {', '.join(map(str, targets))}.")
    if png_path is not None:
        from lvmdiag.report.figures import plot_run

        plot_run(history, report.events, png_path)
        report = dataclasses.replace(report, figure_files=(png_path.name,))
    write_text_atomic(md_path, report.to_markdown())
    if json_path is not None:
        write_json_atomic(json_path, with_schema(report.to_dict()))
    return report

from lvmdiag._callable import make_callable as _make_callable

_make_callable(__name__)  # lvmdiag.report(...) runs lvmdiag.api.report

"""The normalised per-epoch history of one training run, and the readers that build it.

Every reader returns a :class:`RunHistory`: epochs x metrics per evaluation split, the quantities
logged while training (loss terms, gate weight, anchor lambda, lr), the run's config and the label
each series had in its source file (so detectors can check what a number *is* before comparing it).

Formats (auto-detected in this order, see :func:`detect_format`):

- ``lvmdiag-run``: ``config.json`` + ``metrics.jsonl`` (+ ``baselines.json``), written by ``lvmdiag train``;
- ``p7-history``: upstream ``config.json`` + ``training_history.json`` as a list of
  ``{"epoch", "train": {...losses...}, "val": {...cosines...}, "anchor_lambda"}``;
- ``history-object``: ``training_history.json`` as ``{"history": [{"epoch", "train_loss", ...}], ...}``;
- ``history-list``: ``history.json`` (or ``training_history.json``) as a list of flat rows;
- ``csv`` / ``jsonl``: one row per epoch, columns like ``train_loss``, ``val_cos_next`` or ``val/cos_next``;
- ``p7-log``: the upstream stdout log (``Epoch e/E``, ``Train metrics:`` / ``Val metrics:`` blocks),
  the only record of a crashed run;
- ``lightning-csv``, ``hf-trainer-state``, ``tensorboard``: PyTorch Lightning ``metrics.csv``, Hugging Face
  ``trainer_state.json`` and TensorBoard event directories (readers in :mod:`lvmdiag.report.logs`).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from lvmdiag.errors import RunDirError

FORMATS = ("lvmdiag-run", "p7-history", "history-object", "history-list", "csv", "jsonl", "p7-log",
           "lightning-csv", "hf-trainer-state", "tensorboard")
# formats read by lvmdiag.report.logs (imported only when one is read)
_LOG_FORMATS = ("lightning-csv", "hf-trainer-state", "tensorboard")
SPLIT_ALIASES = {
    "train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
    "dev": "val", "test": "test", "ood": "ood",
}
# Quantities logged by the training loop (not by an evaluation pass), besides names starting with "loss".
TRAIN_LOG_KEYS = {"lr", "gate_weight_mean", "anchor_lambda", "teacher_violations_per_batch", "time_s", "time"}
_LOG_SUFFIXES = (".log", ".txt", ".out")


@dataclass(frozen=True)
class RunHistory:
    """Per-epoch metrics of one run, whatever file they came from.

    Attributes
    ----------
    epochs : (E,) int array of the finished epochs, ascending
    train_log : name -> (E,) float array of values logged by the training loop: ``loss`` (total),
        ``loss_*`` terms, ``gate_weight_mean``, ``anchor_lambda``, ``lr``, ... (NaN where missing)
    eval : split -> metric -> (E,) float array, from evaluation passes (``cos_next``, ``cos_prev``,
        ``margin`` (signed), ``cos_anchor``, ``raw_*``, ``loss`` for older trainers, ...)
    labels : ``"train_log.<name>"`` or ``"<split>.<metric>"`` -> the label the value had in its
        source (e.g. ``"Train metrics: Margin"``), used by the metric-definition check
    config : the run's ``config.json`` (empty dict when absent)
    logged_events : epoch -> event names recorded by the trainer (``metrics.jsonl`` ``events``)
    baselines : the run's ``baselines.json`` (split -> predictor -> metric -> value) or None
    source_format : one of :data:`FORMATS`
    source_files : the files read (never written by the report)
    run_dir : the directory (or file) given
    notes : what the reader assumed or skipped (e.g. an unfinished last epoch in a log)
    never_finite : keys (``"train_log.<name>"`` / ``"<split>.<metric>"``) of series that were logged,
        but as NaN/Inf in every epoch (told apart from never-logged series, which are NaN too)
    steps : (E,) float array of the global optimiser step at the end of each epoch (NaN where unknown),
        or None when the source has no step axis; used to place step-based schedule events (``warmup_steps``)
    logged_nonfinite : key -> the epochs at which a value *was logged* as NaN/Inf. A NaN in the arrays is
        also what an epoch that did not log the series holds (validation every other epoch, a cut last
        row); only these epochs are non-finite values. None when unknown (a history built by hand):
        every NaN then counts as logged
    """

    epochs: np.ndarray
    train_log: dict[str, np.ndarray]
    eval: dict[str, dict[str, np.ndarray]]
    labels: dict[str, str] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    logged_events: dict[int, tuple[str, ...]] = field(default_factory=dict)
    baselines: dict[str, Any] | None = None
    source_format: str = ""
    source_files: tuple[str, ...] = ()
    run_dir: str = ""
    notes: tuple[str, ...] = ()
    never_finite: tuple[str, ...] = ()
    steps: np.ndarray | None = None
    logged_nonfinite: dict[str, tuple[int, ...]] | None = None

    @property
    def n_epochs(self) -> int:
        return int(self.epochs.size)

    @property
    def planned_epochs(self) -> int | None:
        """``epochs`` from the config (None when unknown)."""
        value = self.config.get("epochs")
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def complete(self) -> bool:
        """False when the config planned more epochs than were logged (a crashed or running run)."""
        planned = self.planned_epochs
        return planned is None or self.n_epochs >= planned

    def logged_nonfinite_mask(self, key: str, values: np.ndarray) -> np.ndarray:
        """(E,) True at the epochs where series ``key`` (its ``values``) was *logged* as NaN/Inf; an epoch that
        did not log it is False. Without that record (a hand-built history) every non-finite value counts."""
        if self.logged_nonfinite is None:
            return ~np.isfinite(values)
        return np.isin(self.epochs, self.logged_nonfinite.get(key, ()))

    def label(self, key: str) -> str:
        """The source label of ``"train_log.<name>"`` / ``"<split>.<metric>"`` (the key itself when unknown)."""
        return self.labels.get(key, key)

    def splits(self) -> list[str]:
        """Evaluation splits present, val first."""
        order = {"val": 0, "train": 1, "ood": 2, "test": 3}
        return sorted(self.eval, key=lambda s: (order.get(s, 9), s))


# ----------------------------------------------------------------------------------------------
# building a history from rows


class _Builder:
    """Collect per-epoch values by key, then pad to arrays (NaN where an epoch lacks a value)."""

    def __init__(self) -> None:
        self.rows: dict[int, dict[str, float]] = {}
        self.labels: dict[str, str] = {}
        self.events: dict[int, tuple[str, ...]] = {}
        # label -> (epochs, first offending value) for values that are present but not numbers
        self.unparsed: dict[str, tuple[list[int], str]] = {}
        self.duplicates: list[int] = []  # epochs logged more than once (a resumed run); the last entry wins
        self.finite: dict[str, int] = {}  # label -> finite values seen (a series that is NaN/Inf throughout is noted)
        self.finite_by_key: dict[str, int] = {}
        self.steps: dict[int, float] = {}  # epoch -> global step at its end, where the source logs one
        self.nested: set[str] = set()  # labels that held a list or an object (a series holds one number per epoch)

    def put(self, epoch: int, key: str, value: Any, label: str | None = None) -> None:
        number = _to_float(value)
        if number is None:
            if _is_blank(value):
                return
            epochs, first = self.unparsed.setdefault(label or key, ([], repr(value)[:40]))
            epochs.append(epoch)
            if isinstance(value, (list, dict)):
                self.nested.add(label or key)
            return
        self.finite[label or key] = self.finite.get(label or key, 0) + int(np.isfinite(number))
        self.finite_by_key[key] = self.finite_by_key.get(key, 0) + int(np.isfinite(number))
        self.rows.setdefault(epoch, {})[key] = number
        self.labels.setdefault(key, label or key)

    def unparsed_notes(self) -> list[str]:
        """One note per series holding values that are not numbers (they appear as missing in the tables)."""
        notes = []
        for label, (epochs, first) in self.unparsed.items():
            what = "lists or objects" if label in self.nested else "text"
            if label not in self.finite:  # no number at all: a text column (timestamps, phase names)
                notes.append(f"'{label}' holds {what}, not numbers (e.g. {first}); it is not used.")
                continue
            shown = sorted(set(epochs))
            listed = ", ".join(map(str, shown[:8])) + (f", … ({len(shown)} epochs)" if len(shown) > 8 else "")
            notes.append(f"'{label}' is not a number at epoch(s) {listed} (e.g. {first}); those cells are treated "
                         "as missing.")
        return notes

    def build(self, **kwargs: Any) -> RunHistory:
        notes = list(kwargs.get("notes", ())) + self.unparsed_notes()
        never = [label for label, n in self.finite.items() if n == 0]
        if never:
            # the divergence rule needs a finite value first; say plainly that these series never had one
            notes.append(f"{', '.join(repr(x) for x in never)} {'is' if len(never) == 1 else 'are'} NaN/Inf in every "
                         "logged epoch: the run may have diverged from its first epoch; no detector can use "
                         f"{'it' if len(never) == 1 else 'them'}.")
        if self.duplicates:
            notes.append(f"epoch(s) {', '.join(map(str, sorted(set(self.duplicates))))} logged more than once "
                         "(a resumed run?); the last entry of each is used.")
        kwargs["notes"] = tuple(notes)
        kwargs["never_finite"] = tuple(sorted(k for k, n in self.finite_by_key.items() if n == 0))
        epochs = np.array(sorted(self.rows), dtype=int)
        keys = sorted({k for row in self.rows.values() for k in row})
        train_log: dict[str, np.ndarray] = {}
        evals: dict[str, dict[str, np.ndarray]] = {}
        for key in keys:
            arr = np.array([self.rows[e].get(key, np.nan) for e in epochs], dtype=float)
            group, _, name = key.partition(".")
            if group == "train_log":
                train_log[name] = arr
            else:
                evals.setdefault(group, {})[name] = arr
        kwargs.setdefault("logged_nonfinite", {
            key: tuple(int(e) for e in epochs if key in self.rows[e] and not np.isfinite(self.rows[e][key]))
            for key in keys})
        if self.steps and "steps" not in kwargs:
            kwargs["steps"] = np.array([self.steps.get(int(e), np.nan) for e in epochs], dtype=float)
        return RunHistory(epochs=epochs, train_log=train_log, eval=evals, labels=dict(self.labels),
                          logged_events=dict(self.events), **kwargs)


def _is_blank(value: Any) -> bool:
    """Missing by design: null, an empty CSV cell or a dash. Lists and objects are not blank: they are noted."""
    if value is None or isinstance(value, bool):
        return True
    return isinstance(value, str) and value.strip().lower() in {"", "-", "na", "n/a", "none", "null"}


def _epoch(value: Any, where: str) -> int:
    """An epoch number: a whole number >= 0 (``3``, ``3.0``, ``"3"``); anything else is a one-line error."""
    number = _to_float(value)
    if number is None or not np.isfinite(number) or number != int(number) or number < 0:
        raise RunDirError(f"{where}: epoch {value!r} is not a whole number; fix or remove that entry.")
    if number > MAX_EPOCH:  # beyond any run, and beyond the int64 epoch axis (it raised OverflowError)
        raise RunDirError(f"{where}: epoch {value!r} is larger than {MAX_EPOCH:,}; fix or remove that entry.")
    return int(number)


#: the largest epoch number a history may hold
MAX_EPOCH = 10**9


def _mapping(value: Any, where: str) -> dict[str, Any]:
    """A JSON object of named values (None -> empty); anything else is a one-line error."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RunDirError(f"{where} must be a JSON object of named values; got {type(value).__name__}.")
    return value


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: spreadsheet exports start with a byte-order mark
    except UnicodeDecodeError:
        raise RunDirError(f"{path} is not UTF-8 text; is it the right file (a run history is JSON, CSV or a log)?") from None
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror or exc}") from None


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in {"nan", "inf", "+inf", "-inf", "infinity", "-infinity"}:
            return float(text.replace("infinity", "inf"))
        try:
            return float(text)
        except ValueError:
            return None
    return None


def _is_train_log_name(name: str) -> bool:
    return name.startswith("loss") or name in TRAIN_LOG_KEYS


# ----------------------------------------------------------------------------------------------
# readers


def _read_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); "
                          "a run still writing it may have been cut off.") from None


# Config keys the detectors read: (lowest, highest, whole number). A value outside these bounds would
# turn into a confidently wrong number in the report (a chance level of ln(1), a hinge bound of 1e308),
# so it is refused with the key named instead.
CONFIG_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "epochs": (1, np.inf, True), "warmup_epochs": (0, np.inf, True), "batch_size": (1, np.inf, True),
    "n_random_negatives": (0, np.inf, True), "context_length": (1, np.inf, True),
    "anchor_lambda": (0, 1, False), "gate_weak_weight": (0, 1, False), "margin": (-2, 2, False),
    "lr": (0, np.inf, False), "temperature": (0, np.inf, False),
}
_FLAG_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def check_config(config: dict[str, Any], path: Path | str) -> dict[str, Any]:
    """Refuse config values the detectors would misread (non-numbers, out-of-range numbers); null is 'not set'."""
    for key, value in config.items():
        bounds = CONFIG_BOUNDS.get(key) or ((0, np.inf, False) if key.startswith("w_") else None)
        if value is None:
            continue
        if bounds is not None:
            low, high, whole = bounds
            number = None if isinstance(value, bool) or not isinstance(value, (int, float)) else float(value)
            kind = "a whole number" if whole else "a number"
            if number is None or not np.isfinite(number) or (whole and number != int(number)):
                raise RunDirError(f"{path}: '{key}' = {value!r} is not {kind}; fix the config (the report reads it "
                                  "to interpret the logs).")
            if not low <= number <= high:
                raise RunDirError(f"{path}: '{key}' = {value!r} is outside [{low:g}, {high:g}]; fix the config "
                                  "(the report reads it to interpret the logs).")
        elif key == "anchor_learnable" and not (isinstance(value, (bool, int)) and value in (0, 1)) and not (
                isinstance(value, str) and value.strip().lower() in _FLAG_WORDS):
            raise RunDirError(f"{path}: 'anchor_learnable' = {value!r} is not true or false; fix the config.")
    return config


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    if not path.is_file():
        return {}
    config = _read_json(path)
    if not isinstance(config, dict):
        raise RunDirError(f"{path} must hold a JSON object of settings; got a {type(config).__name__}.")
    return check_config(config, path)


def read_lvmdiag_run(directory: Path) -> RunHistory:
    """Read ``config.json`` + ``metrics.jsonl`` (+ ``baselines.json``) written by ``lvmdiag train``."""
    path = directory / "metrics.jsonl"
    builder = _Builder()
    notes: list[str] = []
    lines = _read_text(path).splitlines()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            # only a cut-off last line is tolerated (a run killed mid-write without atomic append)
            if lineno == len(lines):
                notes.append(f"{path.name} line {lineno} is cut off and was skipped.")
                continue
            raise RunDirError(f"{path} line {lineno} is not valid JSON.") from None
        if not isinstance(rec, dict) or "epoch" not in rec:
            raise RunDirError(f"{path} line {lineno} must be a JSON object with an 'epoch' key.")
        where = f"{path} line {lineno}"
        epoch = _epoch(rec["epoch"], where)
        if epoch in builder.rows:
            builder.duplicates.append(epoch)
        for name, value in _mapping(rec.get("train_loss"), f"{where}: 'train_loss'").items():
            builder.put(epoch, f"train_log.{name}", value, f"train_loss.{name}")
        for key in ("lr", "time_s"):
            if key in rec:
                builder.put(epoch, f"train_log.{key}", rec[key], key)
        step = _to_float(rec.get("step"))
        if step is not None and np.isfinite(step):
            builder.steps[epoch] = step
        for split, metrics in _mapping(rec.get("eval"), f"{where}: 'eval'").items():
            for name, value in _mapping(metrics, f"{where}: 'eval.{split}'").items():
                builder.put(epoch, f"{split}.{name}", value, f"eval.{split}.{name}")
        events = rec.get("events")
        if isinstance(events, str):
            events = [events]
        if events is not None and not isinstance(events, list):
            raise RunDirError(f"{where}: 'events' must be a list of event names; got {type(events).__name__}.")
        if events:
            builder.events[epoch] = tuple(str(e) for e in events)
        builder.rows.setdefault(epoch, {})
    files = [str(directory / "config.json"), str(path)]
    baselines = None
    if (directory / "baselines.json").is_file():
        baselines = _check_baselines(_read_json(directory / "baselines.json"), directory / "baselines.json")
        files.append(str(directory / "baselines.json"))
    return builder.build(config=_read_config(directory), baselines=baselines, source_format="lvmdiag-run",
                         source_files=tuple(files), run_dir=str(directory), notes=tuple(notes))


def _check_baselines(obj: Any, path: Path) -> dict[str, Any]:
    """``{split: {predictor: {"cos_next": x, "cos_prev": x, "margin": x, ...}}}``; anything else is an error,
    since the baselines detector would otherwise skip it and the report would claim there is no baselines.json."""
    fix = "regenerate it with lvmdiag train or delete it (then pass --val to compute baselines from the data)"
    if not isinstance(obj, dict):
        raise RunDirError(f"{path} must be a JSON object {{split: {{predictor: metrics}}}}; got "
                          f"{type(obj).__name__}: {fix}.")
    for split, predictors in obj.items():
        if not isinstance(predictors, dict):
            raise RunDirError(f"{path}: '{split}' must map predictor names to metrics; got "
                              f"{type(predictors).__name__}: {fix}.")
        for name, metrics in predictors.items():
            if not isinstance(metrics, dict):
                raise RunDirError(f"{path}: '{split}.{name}' must be an object of metrics; got "
                                  f"{type(metrics).__name__}: {fix}.")
            for key in ("cos_next", "cos_prev", "margin"):
                value = metrics.get(key)
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise RunDirError(f"{path}: '{split}.{name}.{key}' is {value!r}, not a number: {fix}.")
    return obj


def _history_rows_flat(rows: list[Any], builder: _Builder, source: str) -> None:
    """Flat rows ``{"epoch", "train_loss", "val_cosine", ...}`` (older trainers, generic JSONL)."""
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RunDirError(f"{source}: entry {i} must be a JSON object; got {type(row).__name__}.")
        # the epoch column, whatever its case or padding (" Epoch" in a hand-edited CSV)
        epoch_key = next((c for c in row if isinstance(c, str) and c.strip().lower() == "epoch"), None)
        epoch = _epoch(row[epoch_key], f"{source} entry {i}") if epoch_key is not None else i + 1
        if epoch in builder.rows:
            builder.duplicates.append(epoch)
        builder.rows.setdefault(epoch, {})
        for col, value in row.items():
            if col is None:  # csv.DictReader puts cells beyond the header under None
                raise RunDirError(f"{source}: row {i + 1} has more cells than the header has columns; fix that row.")
            if col == epoch_key:
                continue
            key = _column_key(col)
            if key is not None:
                builder.put(epoch, key, value, col)


def _column_key(column: str) -> str | None:
    """Map a generic column name to a history key: ``train_loss`` -> ``train_log.loss``, ``val_cos_next``
    -> ``val.cos_next``, ``val/cos_next`` -> ``val.cos_next``, ``train_cosine`` -> ``train.cosine``."""
    col = column.strip()
    if col.lower() in {"epoch", "step", ""}:
        return None
    if col in TRAIN_LOG_KEYS or col.startswith("loss"):
        return f"train_log.{col}"
    m = re.match(r"^([A-Za-z]+)[/_.](.+)$", col)
    if m and m.group(1).lower() in SPLIT_ALIASES:
        split, name = SPLIT_ALIASES[m.group(1).lower()], m.group(2)
        name = name.replace("/", "_")
        if split == "train" and _is_train_log_name(name):
            # the loss the training loop reports (train mode), not an evaluation of the train split
            return f"train_log.{name}"
        return f"{split}.{name}"
    # anything else (epoch_time, grad_norm, ...) was logged by the training loop, not an evaluation
    return f"train_log.{col}"


def read_p7_history(directory: Path, path: Path | None = None) -> RunHistory:
    """Read the upstream ``training_history.json`` (list of ``{"epoch", "train", "val", "anchor_lambda"}``)
    or its older forms (object with ``"history"``; list of flat rows, also ``history.json``)."""
    path = path or directory / "training_history.json"
    data = _read_json(path)
    builder = _Builder()
    if isinstance(data, dict):
        rows = data.get("history")
        if not isinstance(rows, list):
            raise RunDirError(f"{path} is a JSON object without a 'history' list; expected the upstream "
                              "history forms (a list of epochs, or {\"history\": [...]}).")
        _history_rows_flat(rows, builder, str(path))
        fmt = "history-object"
    elif isinstance(data, list):
        if data and all(isinstance(r, dict) for r in data) and any(
                isinstance(r.get(s), dict) for r in data for s in ("train", "val")):
            for i, row in enumerate(data):
                where = f"{path} entry {i}"
                epoch = _epoch(row["epoch"], where) if "epoch" in row else i + 1
                if epoch in builder.rows:
                    builder.duplicates.append(epoch)
                builder.rows.setdefault(epoch, {})
                for name, value in _mapping(row.get("train"), f"{where}: 'train'").items():
                    builder.put(epoch, f"train_log.{name}", value, f"train.{name}")
                for split in ("val", "ood", "test"):
                    for name, value in _mapping(row.get(split), f"{where}: '{split}'").items():
                        builder.put(epoch, f"{split}.{name}", value, f"{split}.{name}")
                for name, value in row.items():
                    if name not in {"epoch", "train", "val", "ood", "test"}:
                        builder.put(epoch, f"train_log.{name}", value, name)
            fmt = "p7-history"
        else:
            _history_rows_flat(data, builder, str(path))
            fmt = "history-list"
    else:
        raise RunDirError(f"{path} must hold a JSON list of epochs or an object with 'history'.")
    files = [str(p) for p in (directory / "config.json", path) if p.is_file()]
    return builder.build(config=_read_config(directory), source_format=fmt, source_files=tuple(files),
                         run_dir=str(directory))


def read_table(path: Path, config_dir: Path | None = None) -> RunHistory:
    """Read a generic per-epoch CSV or JSONL (one row per epoch)."""
    builder = _Builder()
    if path.suffix.lower() == ".csv":
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.DictReader(fh))
        except UnicodeDecodeError:
            raise RunDirError(f"{path} is not UTF-8 text; is it the right file (a per-epoch CSV)?") from None
        except csv.Error as exc:
            raise RunDirError(f"{path} is not a readable CSV ({exc}).") from None
        fmt = "csv"
    else:
        rows = []
        for lineno, line in enumerate(_read_text(path).splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    raise RunDirError(f"{path} line {lineno} is not valid JSON.") from None
        fmt = "jsonl"
    _history_rows_flat(rows, builder, str(path))
    directory = config_dir or path.parent
    files = [str(p) for p in (directory / "config.json", path) if p.is_file()]
    return builder.build(config=_read_config(directory), source_format=fmt, source_files=tuple(files),
                         run_dir=str(directory))


# upstream stdout log ------------------------------------------------------------------------------

_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?nan|[-+]?inf)"
# searched anywhere in a line, so logging prefixes ("2025-11-04 22:25:16 INFO ") are tolerated
_EPOCH_RE = re.compile(r"(?:^|\s|\W)Epoch\s+(\d+)\s*/\s*(\d+)", re.IGNORECASE)
_KV_RE = re.compile(r"([^:]+?)\s*:\s*" + _NUM + r"(?![\w.])", re.IGNORECASE)
_BATCH_RE = re.compile(r"\bBatch\s+(\d+)\s*/\s*(\d+)\s*:\s*(.*)$", re.IGNORECASE)
# The upstream trainer prints the prev-repel hinge loss as "Margin:" in the Train metrics block; it
# is stored as loss_margin, and its source label is kept so the report can point out the confusion.
_TRAIN_KEYS = {"loss": "loss", "rank": "loss_rank", "margin": "loss_margin", "teacher": "loss_teacher",
               "gate weight": "gate_weight_mean", "anchor λ": "anchor_lambda", "anchor lambda": "anchor_lambda"}
_VAL_KEYS = {"cos(pred, next)": "cos_next", "cos(pred, prev)": "cos_prev", "margin (δ)": "margin",
             "margin": "margin", "cos(pred, anchor)": "cos_anchor"}


def _log_key(raw: str, table: dict[str, str]) -> str | None:
    """The table entry a log key ends with ("INFO - Loss" -> "loss"); the longest match wins."""
    key = raw.strip().lower()
    hits = [name for name in table if key == name or key.endswith(" " + name) or key.endswith("-" + name)]
    return max(hits, key=len) if hits else None


def _match_kv(line: str, table: dict[str, str]) -> tuple[re.Match[str] | None, str | None]:
    """The first ``key: number`` pair in ``line`` whose key is in ``table`` (timestamps hold colons too)."""
    for m in _KV_RE.finditer(line):
        name = _log_key(m.group(1), table)
        if name is not None:
            return m, name
    return None, None


def name_label(raw: str, name: str) -> str:
    """The key as printed in the log, without any logging prefix."""
    raw = raw.strip()
    return raw[len(raw) - len(name):] if raw.lower().endswith(name) else raw


def looks_like_p7_log(path: Path) -> bool:
    """True when the first 200 lines hold an upstream ``Epoch e/E`` header."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for _, line in zip(range(200), fh):
                if _EPOCH_RE.search(line):
                    return True
    except OSError:
        return False
    return False


def read_p7_log(path: Path, config_dir: Path | None = None) -> RunHistory:
    """Parse the upstream stdout log; an epoch counts as finished once its ``Val metrics:`` block is read."""
    builder = _Builder()
    notes: list[str] = []
    epoch, block, total = None, None, None
    finished: set[int] = set()
    last_batch: dict[int, str] = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        m = _EPOCH_RE.search(line)
        if m and not _BATCH_RE.search(line):
            new_epoch = int(m.group(1))
            seen = max([*builder.rows, *last_batch, 0])
            if new_epoch < seen:  # numbering goes back: a run restarted or resumed into the same log (nohup.out)
                for e in [e for e in (*builder.rows, *last_batch) if e >= new_epoch]:
                    builder.rows.pop(e, None)
                    last_batch.pop(e, None)
                    finished.discard(e)
                notes.append(f"line {number}: the epoch numbering goes back from {seen} to {new_epoch} (a run "
                             f"restarted or resumed into the same log); epochs from {new_epoch} on are read from "
                             "the later run, earlier ones are kept.")
            epoch, total, block = new_epoch, int(m.group(2)), None
            continue
        if epoch is None:
            continue
        lower = line.strip().lower()
        if "train metrics" in lower:
            block = "train"
            continue
        if "val metrics" in lower or "validation metrics" in lower:
            block = "val"
            continue
        b = _BATCH_RE.search(line)
        if b:
            last_batch[epoch] = f"batch {b.group(1)}/{b.group(2)}: {b.group(3).strip()}"
            continue
        table = _TRAIN_KEYS if block == "train" else _VAL_KEYS
        kv, name = _match_kv(line, table) if block else (None, None)
        if kv is not None and name is not None:
            key = f"train_log.{table[name]}" if block == "train" else f"val.{table[name]}"
            side = "Train" if block == "train" else "Val"
            builder.put(epoch, key, kv.group(2), f"{side} metrics: {name_label(kv.group(1), name)}")
            if block == "val":
                finished.add(epoch)
            continue
        if line.strip() and block == "val" and epoch in finished:
            block = None  # the first other line after the val block ends it
    for e in list(builder.rows):
        if e not in finished:
            del builder.rows[e]
    started = sorted(set(last_batch) | set(builder.rows))
    for e in started:
        if e not in finished:
            where = f" (last line seen: {last_batch[e]})" if e in last_batch else ""
            notes.append(f"epoch {e} did not finish in the log{where}; it is not in the tables.")
    directory = config_dir or path.parent
    config = _read_config(directory)
    if total is not None and "epochs" not in config:
        config = {**config, "epochs": total}
    files = [str(p) for p in (directory / "config.json", path) if p.is_file()]
    return builder.build(config=config, source_format="p7-log", source_files=tuple(files),
                         run_dir=str(directory), notes=tuple(notes))


# ----------------------------------------------------------------------------------------------
# detection and the one entry point


def _log_candidates(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in _LOG_SUFFIXES)


def _table_candidates(directory: Path) -> list[Path]:
    """Per-epoch tables in a directory: .csv/.jsonl files with an ``epoch`` column. Run directories hold
    other tables too (predictions, per-sample scores); read as a history they would give one "epoch"
    per row, so a table without an epoch column is not picked automatically."""
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and p.suffix.lower() in {".csv", ".jsonl"} and p.name != "metrics.jsonl"
                  and _has_epoch_column(p))


def _has_epoch_column(path: Path) -> bool:
    """True when the CSV header, or the first JSONL object, has an ``epoch`` column (any case/padding)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            first = next((line for line in fh if line.strip()), "")
    except OSError:
        return False
    if path.suffix.lower() == ".csv":
        columns = next(csv.reader([first]), [])
    else:
        try:
            obj = json.loads(first)
        except json.JSONDecodeError:
            return False
        columns = list(obj) if isinstance(obj, dict) else []
    return any(isinstance(c, str) and c.strip().lower() == "epoch" for c in columns)


def detect_format(path: str | Path) -> tuple[str, Path]:
    """Return ``(format, file)`` for a run directory (or a single history file).

    Raises
    ------
    RunDirError
        When nothing readable is found; the message lists what was looked for.
    """
    path = Path(path)
    if path.is_file():
        suffix = path.suffix.lower()
        if path.name == "metrics.jsonl":
            return "lvmdiag-run", path
        from lvmdiag.report.logs.detect import detect_log_format

        found = detect_log_format(path)
        if found is not None:
            return found
        if suffix == ".json":
            return "history-json", path
        if suffix in {".csv", ".jsonl"}:
            return suffix[1:], path
        if looks_like_p7_log(path):
            return "p7-log", path
        raise RunDirError(f"{path}: not a run history I can read (expected .json, .csv, .jsonl or an "
                          "upstream stdout log with 'Epoch e/E' lines).")
    if not path.is_dir():
        raise RunDirError(f"run directory {path} does not exist.")
    if (path / "metrics.jsonl").is_file():
        return "lvmdiag-run", path / "metrics.jsonl"
    for name in ("training_history.json", "history.json"):
        if (path / name).is_file():
            return "history-json", path / name
    from lvmdiag.report.logs.detect import detect_log_format  # lazy: only when no lvmdiag/upstream history is found

    found = detect_log_format(path)
    if found is not None:
        return found
    tables = _table_candidates(path)
    if tables:
        return tables[0].suffix[1:].lower(), tables[0]
    for log in _log_candidates(path):
        if looks_like_p7_log(log):
            return "p7-log", log
    raise RunDirError(
        f"{path}: no run history found; looked for metrics.jsonl (lvmdiag train), training_history.json "
        "or history.json (upstream), a per-epoch .csv/.jsonl with an 'epoch' column, a stdout log "
        "(.log/.txt/.out) with 'Epoch e/E' lines, a Lightning logger's metrics.csv (also under version_N/ or "
        "lightning_logs/), a Hugging Face trainer_state.json (also under checkpoint-N/) and TensorBoard event "
        "files (also under runs/*/); or pass the history file itself.")


def read_run_history(path: str | Path, *, fmt: str = "auto") -> RunHistory:
    """Read a run directory (or one history file) into a :class:`RunHistory`.

    Parameters
    ----------
    path : a run directory, or a single history/log file (its directory's ``config.json`` is used)
    fmt : ``"auto"`` or one of :data:`FORMATS` to force a reader

    Returns
    -------
    RunHistory
        With at least one finished epoch.

    Raises
    ------
    RunDirError
        Missing or unreadable files, or no finished epoch.
    """
    path = Path(path)
    if fmt not in ("auto", *FORMATS):
        raise RunDirError(f"unknown history format {fmt!r}; choose auto or one of {', '.join(FORMATS)}.")
    if fmt == "auto":
        kind, file = detect_format(path)
    else:
        kind, file = fmt, _file_for(path, fmt)
    directory = file.parent
    if kind == "lvmdiag-run":
        history = read_lvmdiag_run(directory)
    elif kind in {"history-json", "p7-history", "history-object", "history-list"}:
        history = read_p7_history(directory, file)
    elif kind in {"csv", "jsonl"}:
        history = read_table(file)
    elif kind == "p7-log":
        history = read_p7_log(file)
    elif kind in _LOG_FORMATS:
        from lvmdiag.report.logs.detect import read_log_format

        history = read_log_format(kind, file)
    else:  # pragma: no cover - guarded above
        raise RunDirError(f"unknown format {kind}")
    if history.n_epochs == 0:
        raise RunDirError(f"{file}: no finished epoch found ({history.source_format} format); nothing to report.")
    return history


def _file_for(path: Path, fmt: str) -> Path:
    """The file a forced format reads inside ``path`` (or ``path`` itself)."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise RunDirError(f"run directory {path} does not exist.")
    if fmt in _LOG_FORMATS:
        from lvmdiag.report.logs.detect import log_file_for

        return log_file_for(path, fmt)
    wanted: dict[str, Iterable[Path]] = {
        "lvmdiag-run": [path / "metrics.jsonl"],
        "p7-history": [path / "training_history.json"],
        "history-object": [path / "training_history.json"],
        "history-list": [path / "history.json", path / "training_history.json"],
        "csv": [p for p in _table_candidates(path) if p.suffix.lower() == ".csv"],
        "jsonl": [p for p in _table_candidates(path) if p.suffix.lower() == ".jsonl"],
        "p7-log": _log_candidates(path),
    }
    for candidate in wanted[fmt]:
        if candidate.is_file():
            return candidate
    raise RunDirError(f"{path}: --format {fmt} needs one of: "
                      f"{', '.join(p.name for p in wanted[fmt]) or 'a matching file'}; none found.")

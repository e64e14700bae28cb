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
  the only record of a crashed run.
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

FORMATS = ("lvmdiag-run", "p7-history", "history-object", "history-list", "csv", "jsonl", "p7-log")
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

    def put(self, epoch: int, key: str, value: Any, label: str | None = None) -> None:
        number = _to_float(value)
        if number is None:
            return
        self.rows.setdefault(epoch, {})[key] = number
        self.labels.setdefault(key, label or key)

    def build(self, **kwargs: Any) -> RunHistory:
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
        return RunHistory(epochs=epochs, train_log=train_log, eval=evals, labels=dict(self.labels),
                          logged_events=dict(self.events), **kwargs)


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
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RunDirError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); "
                          "a run still writing it may have been cut off.") from None


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    if not path.is_file():
        return {}
    config = _read_json(path)
    if not isinstance(config, dict):
        raise RunDirError(f"{path} must hold a JSON object of settings; got a {type(config).__name__}.")
    return config


def read_lvmdiag_run(directory: Path) -> RunHistory:
    """Read ``config.json`` + ``metrics.jsonl`` (+ ``baselines.json``) written by ``lvmdiag train``."""
    path = directory / "metrics.jsonl"
    builder = _Builder()
    notes: list[str] = []
    lines = path.read_text(encoding="utf-8").splitlines()
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
        epoch = int(rec["epoch"])
        for name, value in (rec.get("train_loss") or {}).items():
            builder.put(epoch, f"train_log.{name}", value, f"train_loss.{name}")
        for key in ("lr", "time_s"):
            if key in rec:
                builder.put(epoch, f"train_log.{key}", rec[key], key)
        for split, metrics in (rec.get("eval") or {}).items():
            for name, value in (metrics or {}).items():
                builder.put(epoch, f"{split}.{name}", value, f"eval.{split}.{name}")
        if rec.get("events"):
            builder.events[epoch] = tuple(str(e) for e in rec["events"])
        builder.rows.setdefault(epoch, {})
    files = [str(directory / "config.json"), str(path)]
    baselines = None
    if (directory / "baselines.json").is_file():
        baselines = _read_json(directory / "baselines.json")
        files.append(str(directory / "baselines.json"))
    return builder.build(config=_read_config(directory), baselines=baselines, source_format="lvmdiag-run",
                         source_files=tuple(files), run_dir=str(directory), notes=tuple(notes))


def _history_rows_flat(rows: list[Any], builder: _Builder, source: str) -> None:
    """Flat rows ``{"epoch", "train_loss", "val_cosine", ...}`` (older trainers, generic JSONL)."""
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise RunDirError(f"{source}: entry {i} must be a JSON object; got {type(row).__name__}.")
        epoch = int(row.get("epoch", i + 1))
        builder.rows.setdefault(epoch, {})
        for col, value in row.items():
            if col == "epoch":
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
        if data and all(isinstance(r, dict) and ("train" in r or "val" in r) and
                        isinstance(r.get("train", r.get("val")), dict) for r in data):
            for i, row in enumerate(data):
                epoch = int(row.get("epoch", i + 1))
                builder.rows.setdefault(epoch, {})
                for name, value in (row.get("train") or {}).items():
                    builder.put(epoch, f"train_log.{name}", value, f"train.{name}")
                for split in ("val", "ood", "test"):
                    for name, value in (row.get(split) or {}).items():
                        builder.put(epoch, f"{split}.{name}", value, f"{split}.{name}")
                for name, value in row.items():
                    if name not in {"epoch", "train", "val", "ood", "test"} and not isinstance(value, dict):
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
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        fmt = "csv"
    else:
        rows = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
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
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _EPOCH_RE.search(line)
        if m and not _BATCH_RE.search(line):
            epoch, total, block = int(m.group(1)), int(m.group(2)), None
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
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and p.suffix.lower() in {".csv", ".jsonl"} and p.name != "metrics.jsonl")


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
    tables = _table_candidates(path)
    if tables:
        return tables[0].suffix[1:].lower(), tables[0]
    for log in _log_candidates(path):
        if looks_like_p7_log(log):
            return "p7-log", log
    raise RunDirError(
        f"{path}: no run history found; looked for metrics.jsonl (lvmdiag train), training_history.json "
        "or history.json (upstream), a per-epoch .csv/.jsonl, or a stdout log (.log/.txt/.out) with "
        "'Epoch e/E' lines.")


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

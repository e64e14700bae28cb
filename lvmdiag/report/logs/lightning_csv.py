"""PyTorch Lightning ``CSVLogger`` output: ``metrics.csv`` (+ ``hparams.yaml`` as the config).

``metrics.csv`` holds one row per ``log_metrics`` call (per logging step *and* per epoch end), with an
``epoch`` (0-based) and a ``step`` column and blank cells for the metrics not logged in that call. Each
row's epoch becomes ``epoch + 1`` (the lvmdiag convention: epochs count from 1), then rows are
aggregated per epoch (:mod:`lvmdiag.report.logs.epochs`). A file that does not end with a newline was
cut off mid-row (a killed run): its last row is skipped and named in a note.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from lvmdiag.errors import RunDirError
from lvmdiag.report.history import RunHistory, _read_text, _to_float, check_config
from lvmdiag.report.logs.epochs import LogRow, build_history

# hparams that mean the planned number of epochs
_EPOCH_KEYS = ("epochs", "max_epochs", "num_train_epochs", "num_epochs")


def is_lightning_csv(path: Path) -> bool:
    """A CSV whose header has both an ``epoch`` and a ``step`` column (CSVLogger always writes both)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            header = next(csv.reader([fh.readline()]), [])
    except OSError:
        return False
    cols = {c.strip() for c in header}
    return {"epoch", "step"} <= cols


def read_hparams(directory: Path) -> tuple[dict[str, Any], list[str]]:
    """``hparams.yaml`` as a flat config (nested values dropped), and notes on what could not be read."""
    path = directory / "hparams.yaml"
    if not path.is_file():
        return {}, []
    text = _read_text(path)
    try:
        import yaml  # ships with lightning; a flat "key: value" parse below covers its absence

        data = yaml.safe_load(text)
    except ImportError:
        data = _flat_yaml(text)
    except Exception as exc:  # python-object tags (!!python/...) that safe_load refuses
        data = _flat_yaml(text)
        note = f"hparams.yaml is not plain YAML ({type(exc).__name__}); only its flat 'key: value' lines were read."
        return _clean(data), [note]
    if not isinstance(data, dict):
        return {}, ["hparams.yaml holds no mapping of settings; it was not used."]
    return _clean(data), []


def _flat_yaml(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for line in text.splitlines():
        if line.startswith((" ", "\t", "-", "#")) or ":" not in line:
            continue
        key, _, value = line.partition(":")
        value = value.strip()
        number = _to_float(value)
        out[key.strip()] = number if number is not None else (value.lower() == "true" if value.lower() in
                                                              {"true", "false"} else value)
    return out


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    """Scalars only; whole floats for whole-number keys stay numbers; the planned epochs under ``epochs``."""
    config = {str(k): v for k, v in data.items() if isinstance(v, (int, float, str, bool)) or v is None}
    if "epochs" not in config:
        for key in _EPOCH_KEYS[1:]:
            if isinstance(config.get(key), (int, float)) and not isinstance(config.get(key), bool) and config[key] > 0:
                config["epochs"] = int(config[key])
                break
    return config


def read_lightning_csv(path: Path) -> RunHistory:
    """Read a CSVLogger ``metrics.csv`` (and ``hparams.yaml`` beside it) into a per-epoch history."""
    text = _read_text(path)
    notes: list[str] = []
    if text and not text.endswith("\n"):
        cut = text[text.rfind("\n") + 1:]
        text = text[:text.rfind("\n") + 1]
        notes.append(f"{path.name} ends mid-row (the run was cut off while writing): its last, partial row "
                     f"({cut[:40]!r}) was skipped.")
    try:
        records = list(csv.DictReader(io.StringIO(text)))
    except csv.Error as exc:
        raise RunDirError(f"{path} is not a readable CSV ({exc}).") from None
    parsed: list[tuple[int | None, float | None, dict[str, str]]] = []
    for i, rec in enumerate(records, 2):
        if None in rec:
            raise RunDirError(f"{path}: line {i} has more cells than the header has columns; fix that row.")
        step = _to_float(rec.get("step"))
        # Lightning logs the 0-based index of the batch in progress; + 1 is the count of optimiser steps
        # taken by then (the global step of the Trainer and of Hugging Face)
        step = step + 1 if step is not None and step == step else None
        raw = rec.get("epoch")
        if raw is None or not raw.strip():
            parsed.append((None, step, rec))  # LearningRateMonitor rows carry a step but no epoch
            continue
        epoch = _to_float(raw)
        if epoch is None or epoch != epoch or epoch < 0 or epoch != int(epoch):
            raise RunDirError(f"{path}: line {i} has epoch {raw!r}, not a whole number >= 0.")
        parsed.append((int(epoch) + 1, step, rec))
    rows: list[LogRow] = []
    for epoch, step, rec in parsed:
        if epoch is None:
            epoch = _epoch_at(parsed, step)
            if epoch is None:
                continue
        for name, value in rec.items():
            if name in ("epoch", "step") or value is None or not value.strip():
                continue
            rows.append(LogRow(epoch, step, name.strip(), value))
    config, more = read_hparams(path.parent)
    config = check_config(config, path.parent / "hparams.yaml")
    files = tuple(str(p) for p in (path.parent / "hparams.yaml", path) if p.is_file())
    return build_history(rows, config=config, source_format="lightning-csv", source_files=files,
                         run_dir=path.parent, notes=[*notes, *more])


def _epoch_at(parsed: list[tuple[int | None, float | None, dict[str, str]]], step: float | None) -> int | None:
    """The epoch of a row without one: that of the first row with an epoch at the same or a later step
    (an lr logged at an epoch's first step belongs to it); past every such row, the epoch after the last."""
    epochs = [(s, e) for e, s, _ in parsed if e is not None and s is not None]
    if step is not None:
        later = [e for s, e in epochs if s >= step]
        if later:
            return min(later)
    known = [e for e, _, _ in parsed if e is not None]
    if not known:
        return None
    # logged after every epoch-tagged row: the first step of an epoch that logged nothing else (yet)
    return max(known) + 1 if step is not None and epochs and step > max(s for s, _ in epochs) else max(known)

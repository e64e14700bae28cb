"""Hugging Face ``Trainer`` state: ``trainer_state.json`` (+ ``training_args.json`` / ``config.json``).

``log_history`` is a list of dicts keyed by ``step`` and a fractional ``epoch`` (1.0 at the end of the
first epoch): training logs (``loss``, ``learning_rate``, ``grad_norm``), evaluations (``eval_*``) and a
final summary (``train_runtime``, ``train_loss``, skipped). An entry at epoch x belongs to epoch
ceil(x) (0.5 -> 1, 1.0 -> 1). The config is ``training_args.json`` (``TrainingArguments.to_json_string()``,
written by :class:`lvmdiag.monitor.hf.LvmdiagTrainerCallback`; ``training_args.bin`` is a pickle and is
never loaded) and ``config.json`` where present, plus the state's own ``num_train_epochs``,
``max_steps`` and ``train_batch_size``. A state file cut off mid-write keeps every complete
``log_history`` entry before the cut, with a note.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lvmdiag.errors import RunDirError
from lvmdiag.report.history import RunHistory, _read_json, _read_text, check_config
from lvmdiag.report.logs.epochs import LogRow, build_history

_ARGS_KEYS = {"num_train_epochs": "epochs", "learning_rate": "lr", "per_device_train_batch_size": "batch_size"}
_SUMMARY = "train_runtime"


def _recover_log_history(text: str) -> list[dict[str, Any]] | None:
    """Complete ``log_history`` entries of a state file cut off mid-write (None when there is no list)."""
    start = text.find('"log_history"')
    if start < 0:
        return None
    pos = text.find("[", start)
    if pos < 0:
        return None
    decoder = json.JSONDecoder()
    entries: list[dict[str, Any]] = []
    pos += 1
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        try:
            obj, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return entries
        if isinstance(obj, dict):
            entries.append(obj)


def _config(directory: Path, state: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    config: dict[str, Any] = {}
    files: list[str] = []
    for name in ("config.json", "training_args.json"):
        for folder in (directory, directory.parent):
            path = folder / name
            if path.is_file():
                data = _read_json(path)
                if isinstance(data, dict):
                    config.update({k: v for k, v in data.items() if isinstance(v, (int, float, str, bool))})
                    files.append(str(path))
                break
    for src, dst in _ARGS_KEYS.items():
        if dst not in config and isinstance(config.get(src), (int, float)) and not isinstance(config.get(src), bool):
            config[dst] = int(config[src]) if dst != "lr" else float(config[src])
    if not (isinstance(config.get("max_steps"), (int, float)) and config["max_steps"] > 0):
        config.pop("max_steps", None)  # TrainingArguments' -1 means "not set": the state's own count is used
    for key, dst in (("num_train_epochs", "epochs"), ("train_batch_size", "batch_size"), ("max_steps", "max_steps")):
        value = state.get(key)
        if dst not in config and isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
            config[dst] = int(value)
    if isinstance(config.get("epochs"), float):
        config["epochs"] = math.ceil(config["epochs"])
    return config, files


def read_trainer_state(path: Path) -> RunHistory:
    """Read a ``trainer_state.json`` into a per-epoch history (see the module docstring)."""
    text = _read_text(path)
    notes: list[str] = []
    try:
        state = json.loads(text)
    except json.JSONDecodeError:
        entries = _recover_log_history(text)
        if not entries:
            raise RunDirError(f"{path} is not valid JSON and holds no complete log_history entry; "
                              "a run still writing it may have been cut off.") from None
        state = {"log_history": entries}
        notes.append(f"{path.name} is cut off (a run killed while writing it): the {len(entries)} complete "
                     "log_history entries before the cut were read; the rest of the file was lost.")
    if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
        raise RunDirError(f"{path} has no 'log_history' list; is it a Hugging Face trainer_state.json?")
    rows: list[LogRow] = []
    evaluations: dict[int, int] = {}  # epoch -> evaluation entries in it
    for i, entry in enumerate(state["log_history"]):
        if not isinstance(entry, dict) or _SUMMARY in entry:
            continue
        epoch = entry.get("epoch")
        if isinstance(epoch, bool) or not isinstance(epoch, (int, float)) or not math.isfinite(epoch) or epoch < 0:
            raise RunDirError(f"{path}: log_history entry {i} has epoch {epoch!r}, not a number >= 0.")
        e = max(1, math.ceil(epoch - 1e-9))
        step = entry.get("step")
        step = float(step) if isinstance(step, (int, float)) and not isinstance(step, bool) else None
        rows += [LogRow(e, step, name, value) for name, value in entry.items() if name not in ("epoch", "step")]
        if any(str(name).startswith("eval_") for name in entry):
            evaluations[e] = evaluations.get(e, 0) + 1
    several = {e: n for e, n in evaluations.items() if n > 1}
    if several:  # evaluation by steps: a per-epoch table keeps one value per epoch, say which
        notes.append(f"{sum(several.values())} evaluations fall in {len(several)} epoch(s) (evaluation by steps); each "
                     "epoch's row holds its last evaluation, the others are not shown.")
    config, files = _config(path.parent, state)
    config = check_config(config, path.parent / "training_args.json")
    return build_history(rows, config=config, source_format="hf-trainer-state", source_files=(*files, str(path)),
                         run_dir=path.parent, notes=notes)

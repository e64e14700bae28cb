"""The run directory: what is written when, so that a crash at any moment leaves a readable run.

Layout (read by ``lvmdiag report``; see docs/ARCHITECTURE.md):

- ``config.json``: written before the first batch (upstream keys + ``"format": "lvmdiag-run/1"`` +
  ``"definitions"``, what prev, the gate, each loss and the metrics are);
  rewritten on resume, where only the epochs, device and file paths may change.
- ``train_eval_rows.json``: the row indices (into the usable training rows) of the fixed train subsample.
- ``baselines.json``: ``{split: {"copy_last": metrics, "mean_context": ..., "ridge": ...}}``, once; the
  ridge entry also holds the ``ridge_alpha`` it used.
- ``metrics.jsonl``: one object per finished epoch, appended atomically after the epoch. ``events``
  may hold ``"warmup_end"`` (first epoch without the teacher pull), ``"lr_change"`` and ``"collapse"``
  (val cos_next fell by at least ``collapse_drop`` relative to the previous epoch, or became non-finite).
- ``last.pt`` after every epoch, ``best.pt`` when the selection metric improves: dicts of tensors and
  plain Python values only, so ``torch.load(path, weights_only=True)`` accepts them.

Order per epoch: the metrics line first, then ``last.pt``. A crash in between leaves one metrics line
more than the checkpoint covers; a resume drops lines past the checkpoint's epoch and recomputes them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from lvmdiag._atomic import append_jsonl_atomic, atomic_path, write_json_atomic, write_text_atomic
from lvmdiag.errors import InputError, RunDirError
from lvmdiag.results import to_jsonable
from lvmdiag.train.config import TrainConfig

CONFIG = "config.json"
METRICS = "metrics.jsonl"
BASELINES = "baselines.json"
EVAL_ROWS = "train_eval_rows.json"
LAST = "last.pt"
BEST = "best.pt"
# Files a fresh run with --force may replace (nothing else in the directory is ever deleted).
RUN_FILES = (CONFIG, METRICS, BASELINES, EVAL_ROWS, LAST, BEST, "REPORT.md", "report.json", "REPORT_curves.png")


def check_run_dir(out: str | Path, *, resume: bool, force: bool) -> Path:
    """Check ``out`` may be used, without creating or removing anything (the trainer checks the data next).

    Fresh runs refuse a non-empty directory unless ``force``; ``resume`` needs a ``config.json``.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"--out {path} is a file, not a directory.")
    if resume:
        if not (path / CONFIG).exists():
            raise InputError(f"cannot resume: {path} has no {CONFIG} (not a run directory).")
    elif path.exists() and any(path.iterdir()) and not force:
        raise InputError(f"--out {path} is not empty; pass --resume to continue that run or --force to start "
                         "over (a run is never overwritten silently).")
    return path


def prepare_run_dir(out: str | Path, *, resume: bool, force: bool) -> Path:
    """:func:`check_run_dir`, then make ``out`` ready: created, and with ``force`` cleared of the run files
    this trainer writes (``RUN_FILES``; nothing else is removed)."""
    path = check_run_dir(out, resume=resume, force=force)
    if resume:
        return path
    if force and path.exists():
        for name in RUN_FILES:
            (path / name).unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_config(run_dir: Path, config: TrainConfig) -> None:
    write_text_atomic(run_dir / CONFIG, config.to_json())


def read_config(run_dir: Path) -> TrainConfig:
    return TrainConfig.from_json(run_dir / CONFIG)


def append_metrics(run_dir: Path, record: dict[str, Any]) -> None:
    """Append one epoch's record to ``metrics.jsonl`` atomically (a crash never leaves half a line)."""
    append_jsonl_atomic(run_dir / METRICS, to_jsonable(record))


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every record of ``metrics.jsonl`` (an empty list when the file does not exist)."""
    path = run_dir / METRICS
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise RunDirError(f"{path} line {i} is not valid JSON: {exc}.") from None
    return out


def truncate_metrics(run_dir: Path, last_epoch: int) -> None:
    """Keep only records with ``epoch <= last_epoch`` (used when resuming from a checkpoint)."""
    kept = [r for r in read_metrics(run_dir) if int(r["epoch"]) <= last_epoch]
    text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in kept)
    write_text_atomic(run_dir / METRICS, text)


def write_json(run_dir: Path, name: str, obj: Any) -> None:
    write_json_atomic(run_dir / name, to_jsonable(obj))


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to a temporary sibling then rename, so a crash never leaves a truncated checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` onto the CPU; clear errors for missing or foreign files."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"checkpoint {path} does not exist.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors of many kinds: name the file and the likely cause
        raise InputError(f"checkpoint {path} cannot be loaded with weights_only=True ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}); is it an lvmdiag checkpoint?") from None
    if not isinstance(ckpt, dict) or "model_state_dict" not in ckpt or "config" not in ckpt:
        raise InputError(f"checkpoint {path} is not an lvmdiag checkpoint (no model_state_dict/config).")
    return ckpt

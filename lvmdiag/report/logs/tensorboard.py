"""TensorBoard event directories, read with tensorboard's own ``EventAccumulator`` (the ``lightning``
and ``hf`` extras install tensorboard).

Epoch axis: Lightning's ``TensorBoardLogger`` logs an ``epoch`` scalar (0-based) beside every metric, so a
value logged at step s belongs to epoch (the ``epoch`` value logged at step s, else at the next step
that has one) + 1, and its step, the 0-based index of the batch in progress, + 1 is the optimiser step count; Hugging Face's ``TensorBoardCallback`` logs ``train/epoch`` (fractional, 1.0 at the end of the
first epoch), read as ceil(x). Without either, each step at which an evaluation metric was logged ends
one epoch (noted). Config: ``hparams.yaml`` (Lightning) or ``training_args.json`` / ``config.json`` (HF) in
the directory or up to two levels above it. An event file cut off mid-record (a killed run) keeps every
complete record before the cut; the note names the file and how many bytes were cut.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from lvmdiag.errors import RunDirError
from lvmdiag.report.history import RunHistory, check_config
from lvmdiag.report.logs.epochs import LogRow, build_history
from lvmdiag.report.logs.lightning_csv import read_hparams
from lvmdiag.report.logs.names import map_names

EVENT_PREFIX = "events.out.tfevents."


def event_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name.startswith(EVENT_PREFIX))


def truncation(path: Path) -> int:
    """Bytes after the last complete TFRecord of an event file (0 when the file ends on a record boundary).

    TFRecord framing: uint64 length, uint32 length CRC, ``length`` bytes of data, uint32 data CRC.
    """
    size = path.stat().st_size
    pos = 0
    with open(path, "rb") as fh:
        while pos < size:
            fh.seek(pos)
            header = fh.read(12)
            if len(header) < 12:
                return size - pos
            (length,) = struct.unpack("<Q", header[:8])
            end = pos + 12 + length + 4
            if end > size:
                return size - pos
            pos = end
    return 0


def _config(directory: Path) -> tuple[dict[str, Any], list[str], list[str]]:
    for folder in (directory, directory.parent, directory.parent.parent):
        if (folder / "hparams.yaml").is_file():
            config, notes = read_hparams(folder)
            return check_config(config, folder / "hparams.yaml"), notes, [str(folder / "hparams.yaml")]
        found = [folder / n for n in ("config.json", "training_args.json") if (folder / n).is_file()]
        if found:
            from lvmdiag.report.logs.hf_state import _config as hf_config

            config, files = hf_config(folder, {})
            return check_config(config, found[-1]), [], files
    return {}, [], []


def read_tensorboard(directory: Path) -> RunHistory:
    """Read every scalar of the event files in ``directory`` into a per-epoch history."""
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        raise RunDirError(f"{directory} holds TensorBoard event files; reading them needs tensorboard: "
                          "install lvmdiag[lightning] or lvmdiag[hf].") from None
    files = event_files(directory)
    if not files:
        raise RunDirError(f"{directory} holds no TensorBoard event file ({EVENT_PREFIX}*).")
    notes = []
    for f in files:
        cut = truncation(f)
        if cut:
            notes.append(f"{f.name} is cut off mid-record ({cut} byte(s) after the last complete record; a killed "
                         "run): every complete record before the cut was read.")
    if len(files) > 1:
        notes.append(f"{len(files)} event files in {directory.name} were read together (one run written in parts, "
                     "or several runs in one directory).")
    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0})
    try:
        acc.Reload()
    except Exception as exc:  # a corrupt record the reader cannot skip
        raise RunDirError(f"{directory}: TensorBoard cannot read its event files ({type(exc).__name__}: {exc}).") from None
    scalars = {tag: [(float(e.step), float(e.value), float(e.wall_time)) for e in acc.Scalars(tag)]
               for tag in acc.Tags().get("scalars", [])}
    if not scalars:
        raise RunDirError(f"{directory}: the event files hold no scalar; nothing to report.")
    epoch_of = _epoch_axis(scalars, notes)
    events = sorted(((w, s, tag, v) for tag, vals in scalars.items() for s, v, w in vals), key=lambda x: (x[1], x[0]))
    shift = 1.0 if "epoch" in scalars else 0.0  # Lightning's 0-based batch index -> the count of steps taken
    rows = [LogRow(epoch_of(s), s + shift, tag, v) for _, s, tag, v in events]
    config, more, config_files = _config(directory)
    return build_history(rows, config=config, source_format="tensorboard",
                         source_files=(*config_files, *map(str, files)), run_dir=directory, notes=[*notes, *more])


def _epoch_axis(scalars: dict[str, list[tuple[float, float, float]]], notes: list[str]):
    """step -> epoch (1-based), from the ``epoch`` / ``train/epoch`` scalar or the evaluation steps."""
    if "epoch" in scalars or "train/epoch" in scalars:
        lightning = "epoch" in scalars
        pairs = sorted((s, v) for s, v, _ in scalars["epoch" if lightning else "train/epoch"])
        steps = np.array([s for s, _ in pairs])
        values = [int(v) + 1 if lightning else max(1, math.ceil(v - 1e-9)) for _, v in pairs]

        def epoch_of(step: float) -> int:
            # the epoch logged at this step, else at the next step that has one (a learning rate logged at an
            # epoch's first step belongs to that epoch), else the last
            j = int(np.searchsorted(steps, step, side="left"))
            return values[min(j, len(values) - 1)]
        return epoch_of
    mapping = map_names(scalars)
    eval_steps = sorted({s for tag, key in mapping.items() if not key.startswith("train_log.") for s, _, _ in scalars[tag]})
    if not eval_steps:
        raise RunDirError("the TensorBoard scalars have no epoch axis (no 'epoch' or 'train/epoch' scalar) and no "
                          "evaluation metric to count epochs by; log an 'epoch' scalar.")
    notes.append("no 'epoch' scalar was logged: each step with an evaluation metric is taken as the end of one epoch.")
    ends = np.array(eval_steps)
    return lambda step: int(np.searchsorted(ends, step, side="left")) + 1

"""Find Lightning, Hugging Face and TensorBoard logs in a directory, and dispatch to their reader.

A directory is searched in this order: ``metrics.csv`` with ``epoch`` and ``step`` columns (Lightning
CSVLogger), ``trainer_state.json`` (HF), TensorBoard event files; then the newest ``version_N/``
(a Lightning logger root, also under ``lightning_logs/``), the last ``checkpoint-N/`` (an HF output
directory without a saved final state) holding one of those, and the newest ``runs/*/`` with event files
(the HF Trainer's TensorBoard root).
"""

from __future__ import annotations

import re
from pathlib import Path

from lvmdiag.errors import RunDirError
from lvmdiag.report.history import RunHistory

_NUMBERED = {"version": re.compile(r"^version_(\d+)$"), "checkpoint": re.compile(r"^checkpoint-(\d+)$")}


def _here(directory: Path) -> tuple[str, Path] | None:
    from lvmdiag.report.logs.lightning_csv import is_lightning_csv
    from lvmdiag.report.logs.tensorboard import event_files

    csv_path = directory / "metrics.csv"
    if csv_path.is_file() and is_lightning_csv(csv_path):
        return "lightning-csv", csv_path
    if (directory / "trainer_state.json").is_file():
        return "hf-trainer-state", directory / "trainer_state.json"
    events = event_files(directory)
    if events:
        return "tensorboard", events[0]
    return None


def _numbered(directory: Path, kind: str) -> list[Path]:
    found = [(int(m.group(1)), p) for p in directory.iterdir() if p.is_dir() and (m := _NUMBERED[kind].match(p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def detect_log_format(path: Path) -> tuple[str, Path] | None:
    """``(format, file)`` of a Lightning/HF/TensorBoard log at ``path`` (a file or a directory), else None."""
    if path.is_file():
        from lvmdiag.report.logs.lightning_csv import is_lightning_csv
        from lvmdiag.report.logs.tensorboard import EVENT_PREFIX

        if path.suffix.lower() == ".csv" and is_lightning_csv(path) and path.name == "metrics.csv":
            return "lightning-csv", path
        if path.name == "trainer_state.json":
            return "hf-trainer-state", path
        if path.name.startswith(EVENT_PREFIX):
            return "tensorboard", path
        return None
    if not path.is_dir():
        return None
    found = _here(path)
    if found:
        return found
    for root in (path, path / "lightning_logs"):
        if root.is_dir():
            for sub in _numbered(root, "version"):
                if (found := _here(sub)) is not None:
                    return found
    for sub in _numbered(path, "checkpoint"):
        if (sub / "trainer_state.json").is_file():
            return "hf-trainer-state", sub / "trainer_state.json"
    runs = path / "runs"  # the Hugging Face Trainer's TensorBoard root: output_dir/runs/<date_host>/
    if runs.is_dir():
        from lvmdiag.report.logs.tensorboard import event_files

        logged = sorted((p for p in runs.iterdir() if p.is_dir() and event_files(p)), key=lambda p: p.stat().st_mtime)
        if logged:
            return "tensorboard", event_files(logged[-1])[0]
    return None


def log_file_for(path: Path, fmt: str) -> Path:
    """The file a forced ``--format`` reads in ``path``."""
    found = detect_log_format(path)
    if found is None or found[0] != fmt:
        wanted = {"lightning-csv": "metrics.csv with epoch and step columns", "hf-trainer-state": "trainer_state.json",
                  "tensorboard": "events.out.tfevents.* files"}[fmt]
        raise RunDirError(f"{path}: --format {fmt} needs {wanted}; none found.")
    return found[1]


def read_log_format(kind: str, file: Path) -> RunHistory:
    """Read ``file`` with the reader of ``kind``."""
    if kind == "lightning-csv":
        from lvmdiag.report.logs.lightning_csv import read_lightning_csv

        return read_lightning_csv(file)
    if kind == "hf-trainer-state":
        from lvmdiag.report.logs.hf_state import read_trainer_state

        return read_trainer_state(file)
    from lvmdiag.report.logs.tensorboard import read_tensorboard

    return read_tensorboard(file.parent)

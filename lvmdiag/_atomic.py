"""Atomic file output: write to a temporary sibling, fsync, then rename over the target."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_special_file(path: str | os.PathLike[str]) -> bool:
    """An existing path that is neither a regular file nor a directory: a device (``/dev/null``,
    ``/dev/stdout``), a FIFO or a socket. Such a target is written through, never replaced."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def copy_into(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Write ``source``'s bytes into an existing special ``target`` (a device or pipe is opened, not replaced)."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)


@contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it to ``path``, on error delete it.

    ``suffix`` keeps an extension on the temporary name for writers that need one (``np.savez``
    appends ``.npz`` otherwise). A special target (:func:`is_special_file`, e.g. ``--out /dev/null``
    or a pipe) gets the finished bytes written into it instead: renaming over it would replace the
    device with a regular file.
    """
    target = Path(path)
    if is_special_file(target):
        with tempfile.TemporaryDirectory(prefix="lvmdiag-") as scratch:
            tmp = Path(scratch) / f"output{suffix}"
            yield tmp
            copy_into(tmp, target)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes 0600; outputs get normal permissions
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (``allow_nan=False``: NaN must be None)."""
    write_text_atomic(path, json.dumps(obj, indent=2, allow_nan=False, sort_keys=False) + "\n")


def append_jsonl_atomic(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one JSON line by rewriting the file atomically, so a crash never leaves half a line."""
    target = Path(path)
    old = target.read_text(encoding="utf-8") if target.exists() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    write_text_atomic(target, old + json.dumps(record, allow_nan=False) + "\n")

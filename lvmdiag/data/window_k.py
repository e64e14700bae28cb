"""The window length K an input fixes by itself, read without its vectors.

An article store is cut into windows of the K the caller chooses (``--k``); a window file (contexts
(N, K, D) and targets) already has its K, and a requested K is ignored there. :func:`check_requested_k`
turns that silent mismatch into one clear error when the user asked for a K explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from lvmdiag.errors import InputError


def declared_k(path: str | os.PathLike[str]) -> int | None:
    """K of a window input (npz, .npy directory, shard folder, Parquet/Arrow/datasets/safetensors windows).

    None for an article store (its K is chosen when windows are built), for a missing or unreadable
    input (the loader reports those) and for a layout this cannot tell without reading the vectors.
    Reads only headers and schemas; a columnar input is opened lazily (no vectors decoded).
    """
    p = Path(path)
    try:
        if p.is_dir():
            npy = p / "contexts.npy"
            if not npy.is_file():  # a folder of .npy shard directories?
                subs = sorted(x for x in p.iterdir() if x.is_dir() and (x / "contexts.npy").is_file())
                npy = subs[0] / "contexts.npy" if subs else npy
            if npy.is_file():
                return _k_of_shape(np.load(npy, mmap_mode="r", allow_pickle=False).shape)
        from lvmdiag.data.arrow_sources import arrow_kind

        if arrow_kind(p) is not None:
            return _columnar_k(p)
        if p.is_file():
            from lvmdiag.data._npz import NpzArchive
            from lvmdiag.data.readers import _split_layout
            from lvmdiag.data.store import detect_store_form
            from lvmdiag.data.validate import file_label

            with NpzArchive(p, file_label(p)) as arc:
                if detect_store_form(arc.keys) is not None:
                    return None
                ks = {_k_of_shape(arc.shape(ckey)) for name, (ckey, _) in _split_layout(arc.keys).items()
                      if name != "__partial__" and ckey}
                ks.discard(None)
                return ks.pop() if len(ks) == 1 else None
    except (InputError, OSError, ValueError, KeyError, IndexError):
        return None  # the loader reads it again and reports what is wrong, in one line
    return None


def _k_of_shape(shape: tuple[int, ...]) -> int | None:
    return int(shape[1]) if len(shape) == 3 else None


def _columnar_k(p: Path) -> int | None:
    """K of a columnar window file, opened lazily; None for a columnar article store."""
    from lvmdiag.data.readers import load_sequences

    seq = load_sequences(p, scan="none")  # a DatasetDict with several splits raises: K unknown here
    return None if "store" in seq.fmt else int(seq.k)


#: window length cut from an article store when no K is asked for (the CLI's --k, the API's k=None)
DEFAULT_K = 5


def resolve_k(k: int | None, inputs: Mapping[str, Any] | Iterable[tuple[str, Any]], *, k_name: str = "--k") -> int:
    """The K to cut article stores with: :data:`DEFAULT_K` when none was asked for; an explicit ``k`` must be
    the K of every window file among ``inputs`` (name -> path or None, or such pairs), else one InputError line.
    Only headers are read. ``k_name``: "--k" for the CLI, "k=" for the Python API."""
    if k is None:
        return DEFAULT_K
    check_requested_k(k, inputs.items() if isinstance(inputs, Mapping) else inputs, k_name=k_name)
    return k


def check_requested_k(k: int, inputs: Iterable[tuple[str, str | os.PathLike[str] | None]], *,
                      k_name: str = "--k") -> None:
    """Raise when ``k`` was asked for explicitly but an input is a window file with another K.

    ``inputs`` are (option, path) pairs such as ("--train", "train.npz"); None paths are skipped.
    ``k_name`` is how the caller spells the option ("--k" on the command line, "k=" in Python).
    """
    for option, path in inputs:
        if path is None:
            continue
        have = declared_k(path)
        if have is not None and have != k:
            raise InputError(k_mismatch(k, have, f"{option} {Path(path).name}", k_name))


def k_mismatch(k: int, have: int, what: str, k_name: str = "--k") -> str:
    """The one-line error for an explicit K that a window input does not have."""
    ask = (lambda v: f"{k_name} {v}") if k_name.startswith("--") else (lambda v: f"{k_name}{v}")
    drop = k_name.rstrip("=")
    return (f"{ask(k)} does not apply to {what}: it holds windows with K = {have} ({drop} sets K only when "
            f"windows are cut from an article store); drop {drop} or pass {ask(have)}.")

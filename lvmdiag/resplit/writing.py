"""Writing a resplit: stream rows into the output form, inside a temporary directory that is
renamed into place only when complete, so an interrupted run leaves nothing half-written."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from lvmdiag.data.sequences import SequenceSet

#: seconds to sleep after each written output file; a test hook for interrupting a run mid-write
SLEEP_ENV = "LVMDIAG_RESPLIT_TEST_SLEEP"


def maybe_sleep() -> None:
    """Test hook: pause between output files so a test can kill the run mid-write."""
    delay = os.environ.get(SLEEP_ENV)
    if delay:
        time.sleep(float(delay))


def _gather(arr: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """``arr[sel]`` for sorted ``sel``, copying runs of consecutive rows as slices.

    A split's rows are whole articles, i.e. long runs of consecutive rows; slicing a memory map
    reads each run sequentially, which is several times faster than a fancy index over it.
    """
    if sel.size == 0:
        return np.asarray(arr[sel])
    breaks = np.flatnonzero(np.diff(sel) != 1) + 1
    if breaks.size > sel.size // 8:
        return np.asarray(arr[sel])
    bounds = np.r_[0, breaks, sel.size]
    out = np.empty((sel.size,) + arr.shape[1:], dtype=arr.dtype)
    for a, b in zip(bounds[:-1], bounds[1:]):
        out[a:b] = arr[sel[a] : sel[b - 1] + 1]
    return out


def write_npy_dir(
    dest: Path,
    sets: list[SequenceSet],
    rows: list[np.ndarray],
    with_ids: bool,
    extra_keys: list[str],
    block_rows: int,
    tick: Callable[[int], None],
) -> None:
    """Stream the chosen rows of every input into ``dest/{contexts,targets,...}.npy`` in bounded memory.

    Each file gets its ``.npy`` header (shape known in advance) and then the rows block by block,
    written sequentially (faster than page-faulting through a writable memory map, same bytes as
    ``np.save``); input rows are gathered block by block from the (memory-mapped) inputs.
    """
    dest.mkdir()
    n = int(sum(r.size for r in rows))
    first = sets[0]
    k, d = first.k, first.d
    specs: dict[str, tuple[np.dtype, tuple[int, ...]]] = {
        "contexts": (first.contexts.dtype, (n, k, d)),
        "targets": (first.targets.dtype, (n, d)),
    }
    if with_ids:
        specs["article_ids"] = (np.dtype(np.int64), (n,))
    for key in extra_keys:
        src = np.asarray(first.extras[key][:0])
        specs[key] = (src.dtype, (n,) + src.shape[1:])
    handles = {}
    try:
        for key, (dtype, shape) in specs.items():
            fh = open(dest / f"{key}.npy", "wb")
            handles[key] = fh
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
            np.lib.format.write_array_header_1_0(fh, header)
        for seq, idx in zip(sets, rows):
            for start in range(0, idx.size, block_rows):
                sel = idx[start : start + block_rows]
                handles["contexts"].write(np.ascontiguousarray(_gather(seq.contexts, sel), dtype=specs["contexts"][0]).tobytes())
                handles["targets"].write(np.ascontiguousarray(_gather(seq.targets, sel), dtype=specs["targets"][0]).tobytes())
                if with_ids:
                    handles["article_ids"].write(np.ascontiguousarray(np.asarray(seq.article_ids)[sel], dtype=np.int64).tobytes())
                for key in extra_keys:
                    handles[key].write(np.ascontiguousarray(np.asarray(seq.extras[key][sel]), dtype=specs[key][0]).tobytes())
                tick(sel.size)
    finally:
        for fh in handles.values():
            fh.close()


def write_parquet_split(
    dest: Path,
    sets: list[SequenceSet],
    rows: list[np.ndarray],
    with_ids: bool,
    extra_keys: list[str],
    block_rows: int,
    tick: Callable[[int], None],
) -> None:
    """Stream the chosen rows of every input into one Parquet file (fixed-size row groups, fixed
    writer options: the same rows give the same bytes); rows are gathered block by block."""
    from lvmdiag.data.parquet_writer import ParquetSink

    first = sets[0]
    extras = {}
    for key in extra_keys:
        head = np.asarray(first.extras[key][:0])
        extras[key] = (head.dtype, tuple(head.shape[1:]))
    dtype = first.contexts.dtype if np.dtype(first.contexts.dtype).kind == "f" else np.dtype(np.float32)
    with ParquetSink(dest, first.k, first.d, dtype, with_ids, extras) as sink:
        for seq, idx in zip(sets, rows):
            for start in range(0, idx.size, block_rows):
                sel = idx[start : start + block_rows]
                sink.write(
                    _gather(seq.contexts, sel),
                    _gather(seq.targets, sel),
                    np.asarray(seq.article_ids)[sel] if with_ids else None,
                    {key: np.asarray(seq.extras[key])[sel] for key in extra_keys},
                )
                tick(sel.size)


def plain_extra_keys(sets: list[SequenceSet], extra_keys: list[str], numeric_2d: bool) -> tuple[list[str], list[str]]:
    """(kept, dropped): extras a raw-array output can hold (no object arrays; Parquet: numeric, <= 2-d)."""
    kept, dropped = [], []
    for key in extra_keys:
        head = np.asarray(sets[0].extras[key][:0])
        ok = not head.dtype.hasobject and (not numeric_2d or (head.dtype.kind in "biuf" and head.ndim <= 2))
        (kept if ok else dropped).append(key)
    return kept, dropped


def pooled_subset(sets: list[SequenceSet], rows: list[np.ndarray], name: str, extra_keys: list[str]) -> SequenceSet:
    """One in-memory SequenceSet holding the chosen rows of every input (for .npz forms)."""
    parts = [s.subset(r) for s, r in zip(sets, rows)]
    ids = None
    if all(p.article_ids is not None for p in parts):
        ids = np.concatenate([p.article_ids for p in parts])
    valid = None
    if any(p.valid is not None for p in parts):
        valid = np.concatenate([p.valid if p.valid is not None else np.ones(p.n, bool) for p in parts])
    base = sets[0]
    return replace(
        base,
        contexts=np.concatenate([p.contexts for p in parts]),
        targets=np.concatenate([p.targets for p in parts]),
        article_ids=ids,
        id_source=base.id_source if ids is not None else "none",
        split=name,
        extras={key: np.concatenate([p.extras[key] for p in parts]) for key in extra_keys},
        valid=valid,
    )


def output_name(fmt: str, name: str) -> str:
    """The file (or directory) name of one split in output form ``fmt`` ("npy_dir", "parquet", npz forms)."""
    if fmt == "npy_dir":
        return name
    return f"{name}.parquet" if fmt == "parquet" else f"{name}.npz"


#: ``resplit(out_format=...)`` values and the form each writes
OUTPUT_FORMATS = {"npz": "npz", "npy": "npy_dir", "parquet": "parquet"}
#: input forms whose own form is an .npz form (written back by save_sequences as read)
_NPZ_INPUT_FORMS = ("arxiv", "wikipedia", "rebuilt", "two_split", "article_store", "synthetic")


#: columnar kinds of file (window files as their ``fmt``, article stores as ``attrs["columnar"]["kind"]``)
COLUMNAR_KINDS = ("parquet", "arrow", "hf_dataset")


def output_form(input_fmt: str, out_format: str | None, input_kind: str | None = None) -> str:
    """"npy_dir", "parquet" or "npz": ``out_format`` if given, else the inputs' own kind of file
    (columnar inputs, window files or article stores (``input_kind``), are written as Parquet,
    safetensors as .npz)."""
    if out_format is None:
        if input_fmt == "npy_dir":
            return "npy_dir"
        return "parquet" if input_fmt in COLUMNAR_KINDS or input_kind in COLUMNAR_KINDS else "npz"
    return OUTPUT_FORMATS[out_format]


def npz_form_for(input_fmt: str) -> str | None:
    """The ``fmt`` for save_sequences: None keeps the input's own npz form; others become "npz"."""
    return None if input_fmt in _NPZ_INPUT_FORMS else "npz"


# ---------------------------------------------------------------------------------------------
# temporary directory handling


def tmp_dir_for(out: Path) -> Path:
    return out.parent / f".{out.name}.resplit-{os.getpid()}.tmp"


def remove_stale_tmp(out: Path) -> None:
    """Delete temporary directories of earlier runs that were killed (their process is gone).

    A run killed between moving an old output aside and moving the new one in leaves the old,
    complete output as ``.<name>.resplit-<pid>.old``: it is moved back when ``out`` is absent.
    """
    for cand in sorted(out.parent.glob(f".{out.name}.resplit-*.old")):
        try:
            pid = int(cand.name.rsplit("-", 1)[1].split(".")[0])
            os.kill(pid, 0)
            continue
        except (IndexError, ValueError, PermissionError):
            continue
        except ProcessLookupError:
            if not out.exists():
                os.replace(cand, out)
            else:
                shutil.rmtree(cand, ignore_errors=True)
    for cand in out.parent.glob(f".{out.name}.resplit-*.tmp"):
        try:
            pid = int(cand.name.rsplit("-", 1)[1].split(".")[0])
        except (IndexError, ValueError):
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            shutil.rmtree(cand, ignore_errors=True)
        except PermissionError:
            continue


def move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished temporary directory to ``out`` (replacing an old output when forced)."""
    if out.exists():
        old = out.parent / f".{out.name}.resplit-{os.getpid()}.old"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)
    _fsync_dir(out.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)

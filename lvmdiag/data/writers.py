"""Write sequence sets back in the form they were read from, atomically and byte-for-byte deterministic.

``np.savez`` stamps every zip member with the current time, so two runs of the same resplit would
give different bytes. :func:`write_npz` writes the same uncompressed (``ZIP_STORED``, zip64) layout
as ``np.savez`` but with a fixed timestamp and fixed attributes, so equal arrays give equal files,
and the result is still memory-mappable by the readers. Arrays are streamed into the archive in
row blocks, so memory-mapped inputs are never copied whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lvmdiag._atomic import atomic_path
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.data.validate import block_rows_for
from lvmdiag.errors import InputError, LvmdiagWarning

__all__ = ["save_sequences", "save_split_files", "write_npz"]

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
#: forms written as a single-split .npz with the keys they were read with
_NPZ_FORMS = ("arxiv", "wikipedia", "rebuilt", "two_split")
#: forms written as one Parquet file (columnar inputs are written back as Parquet)
_COLUMNAR_FORMS = ("parquet", "arrow", "hf_dataset")


def write_npz(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` as an uncompressed ``.npz`` with deterministic bytes (not atomic).

    Object arrays are pickled (as ``np.savez`` does); everything else is streamed in row blocks.
    """
    with zipfile.ZipFile(path, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o600 << 16
            info.create_system = 3
            with zf.open(info, mode="w", force_zip64=True) as fp:
                _write_array(fp, arr, data_start=zf.fp.tell())


def _write_array(fp: Any, arr: np.ndarray, data_start: int = 0) -> None:
    """The .npy bytes of ``arr`` (header, then data written in blocks of rows).

    ``data_start`` is the file offset where these bytes begin: the header is padded so that the
    array data starts on a 64-byte boundary of the file, so readers can memory-map it aligned.
    """
    arr = arr if isinstance(arr, np.ndarray) else np.asarray(arr)
    if arr.dtype.hasobject or arr.ndim == 0:
        np.lib.format.write_array(fp, np.asarray(arr), allow_pickle=True)
        return
    descr = np.lib.format.dtype_to_descr(arr.dtype)
    text = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, tuple(arr.shape))
    prefix = 10  # magic (6) + version (2) + 2-byte header length
    pad = (-(data_start + prefix + len(text) + 1)) % 64
    text = text + " " * pad + "\n"
    if len(text) >= 65535:
        raise InputError(f"array header too long to write ({len(text)} bytes).")
    fp.write(np.lib.format.magic(1, 0) + len(text).to_bytes(2, "little") + text.encode("latin1"))
    row_bytes = int(np.prod(arr.shape[1:], dtype=np.int64)) * arr.dtype.itemsize
    step = block_rows_for(max(row_bytes, 1))
    for start in range(0, arr.shape[0], step):
        fp.write(np.ascontiguousarray(arr[start : start + step]).tobytes())


def save_sequences(seqset: SequenceSet, path: str | os.PathLike[str], *, fmt: str | None = None) -> Path:
    """Write ``seqset`` in the form it was read from (or ``fmt``), atomically.

    Parameters
    ----------
    seqset : the windows to write (e.g. one split of a resplit)
    path : output ``.npz`` file, a directory for the ``npy_dir`` form, a ``.parquet`` file for "parquet"
    fmt : override the form: "arxiv", "wikipedia", "rebuilt", "npy_dir", "parquet" (the layout of
        :mod:`lvmdiag.data.parquet_writer`), or "npz" (rebuilt, or arxiv without ids). Default: ``seqset.fmt``
        (windows read from Parquet, Arrow or a ``datasets`` directory are written as Parquet);
        windows built from an article store (and synthetic ones with ids) are written in the rebuilt
        form (contexts, targets, article_ids, target/context indices, manifest); a split of a
        two-split file is written as a single-split file with the unprefixed keys.

    Returns
    -------
    The path written.

    The same keys as the input are used (aliases included), per-window extras (metadata, texts,
    indices) are written for the rows kept, file-level arrays and scalars are copied, and
    ``num_sequences`` is updated. Equal inputs give byte-identical files.
    """
    form = fmt or seqset.fmt
    target = Path(path)
    if form == "npy_dir":
        _warn_lost(seqset, target)
        _save_npy_dir(seqset, target)
        return target
    if form in _COLUMNAR_FORMS:
        from lvmdiag.data.parquet_writer import write_sequences_parquet

        return write_sequences_parquet(seqset, target)
    if form in ("article_store", "synthetic", "safetensors", "npz"):
        form = "rebuilt" if seqset.article_ids is not None else "arxiv"
    if form not in _NPZ_FORMS:
        raise InputError(
            f"cannot write sequences in form {form!r}; choose one of {', '.join(_NPZ_FORMS + ('npy_dir', 'parquet'))}."
        )
    _warn_lost(seqset, target)
    arrays = _npz_arrays(seqset, form)
    with atomic_path(target, suffix=".npz") as tmp:
        write_npz(tmp, arrays)
    return target


def save_split_files(splits: Mapping[str, SequenceSet], path: str | os.PathLike[str]) -> Path:
    """Write several splits into one two-split file (``context_sequences``/``target_vectors`` for
    the first split, ``<name>_context_sequences``/``<name>_target_vectors`` for the others)."""
    arrays: dict[str, np.ndarray] = {}
    for i, (name, s) in enumerate(splits.items()):
        prefix = "" if i == 0 else f"{name}_"
        arrays[prefix + "context_sequences"] = s.contexts
        arrays[prefix + "target_vectors"] = s.targets
        for key, value in sorted(s.extras.items()):
            arrays[prefix + key] = value
    target = Path(path)
    with atomic_path(target, suffix=".npz") as tmp:
        write_npz(tmp, arrays)
    return target


def _npz_arrays(s: SequenceSet, form: str) -> dict[str, np.ndarray]:
    """Key -> array for one split, in the input's key order where it is known."""
    keys = dict(s.attrs.get("keys") or {})
    ckey, tkey = keys.get("contexts") or "contexts", keys.get("targets") or "targets"
    id_key = keys.get("article_ids")
    if form == "two_split":  # one split of a two-split file: the unprefixed keys
        ckey, tkey = _strip_split(ckey), _strip_split(tkey)
        id_key = _strip_split(id_key) if id_key else None
    if form == "rebuilt" or ckey == "vectors":
        ckey, tkey = "contexts", "targets"
    arrays: dict[str, np.ndarray] = {ckey: s.contexts, tkey: s.targets}
    if s.article_ids is not None:
        if form == "rebuilt":
            arrays["article_ids"] = np.asarray(s.article_ids, dtype=np.int64)
        elif id_key and not id_key.endswith("metadata"):
            arrays[id_key] = np.asarray(s.article_ids, dtype=np.int64)
    for key, value in s.extras.items():
        arrays[key] = value
    file_arrays: dict[str, np.ndarray] = dict(s.attrs.get("file_arrays") or {})
    if "num_sequences" in file_arrays:
        file_arrays["num_sequences"] = np.asarray(s.n, dtype=np.asarray(file_arrays["num_sequences"]).dtype)
    if form == "rebuilt" and "manifest" not in file_arrays:
        manifest = {
            "format": "lvmdiag-rebuilt/1",
            "source": s.source,
            "split": s.split,
            "n": s.n,
            "k": s.k,
            "d": s.d,
            "id_source": s.id_source,
            "built_from": s.attrs.get("store"),
        }
        file_arrays["manifest"] = np.frombuffer(json.dumps(manifest, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    arrays.update(file_arrays)
    order = [k for k in s.attrs.get("key_order", []) if k in arrays]
    order += [k for k in arrays if k not in order]
    return {k: arrays[k] for k in order}


def _warn_lost(s: SequenceSet, target: Path) -> None:
    """Object arrays skipped at reading time cannot be written back: say so rather than drop them silently."""
    skipped = s.attrs.get("skipped_keys") or []
    if skipped:
        warnings.warn(
            f"{target}: {', '.join(f'`{k}`' for k in skipped)} from {s.source} were not read (object arrays) and are "
            "not written; read the input with --allow-pickle (allow_pickle=True) to keep them.",
            LvmdiagWarning,
            stacklevel=3,
        )


def _strip_split(key: str) -> str:
    for prefix in ("train_", "val_", "test_", "ood_"):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _save_npy_dir(s: SequenceSet, target: Path) -> None:
    """Write contexts.npy, targets.npy, article_ids.npy and extras into a temp dir, then swap it in."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        arrays: dict[str, np.ndarray] = {"contexts": s.contexts, "targets": s.targets}
        if s.article_ids is not None:
            arrays["article_ids"] = np.asarray(s.article_ids, dtype=np.int64)
        objects = [k for k, v in s.extras.items() if np.asarray(v[:0]).dtype.hasobject]
        if objects:
            warnings.warn(
                f"{target}: object arrays {', '.join(f'`{k}`' for k in objects)} cannot be stored as memory-mappable "
                ".npy files and are not written; write an .npz (fmt='wikipedia' or 'rebuilt') to keep them.",
                LvmdiagWarning,
                stacklevel=3,
            )
        arrays.update({k: v for k, v in s.extras.items() if k not in objects})
        for key, arr in arrays.items():
            with open(tmp / f"{key}.npy", "wb") as fh:
                _write_array(fh, arr)
                fh.flush()
                os.fsync(fh.fileno())
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)

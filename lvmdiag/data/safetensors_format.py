"""``.safetensors`` files holding windows or an article store, memory-mapped.

The format is an 8-byte header length, a JSON header (dtype, shape and byte range of each tensor)
and raw little-endian data, so every tensor is mapped in place with ``np.memmap``: nothing is read
until it is used, and the safetensors package is not needed to read (the tests write with it).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lvmdiag.data.columnar import COLUMN_ALIASES, store_to_lazy_windows
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.data.store import ArticleStore, _check_chunk_order
from lvmdiag.data.validate import CONTEXT_ALIASES, TARGET_ALIASES, check_sequence_shapes, require_float, scan_sequences
from lvmdiag.errors import InputError

__all__ = ["safetensors_sequences", "safetensors_store"]

_ST_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
              "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}


def _safetensors_arrays(path: Path, fname: str) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file, memory-mapped (its header is read; no data is copied)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ValueError("shorter than its 8-byte header length")
            (hlen,) = struct.unpack("<Q", raw)
            if hlen > min(size - 8, 100 * 2**20):
                raise ValueError("header length exceeds the file")
            header = json.loads(fh.read(hlen).decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{fname} cannot be read as safetensors ({exc}); the file looks truncated or corrupt.") from None
    base = 8 + hlen
    out: dict[str, np.ndarray] = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        code = info.get("dtype")
        if code not in _ST_DTYPES:
            raise InputError(f"tensor `{key}` in {fname} is {code}, which numpy cannot read; save it as F32.")
        dtype = np.dtype(_ST_DTYPES[code])
        shape = tuple(int(x) for x in info["shape"])
        begin, end = (int(x) for x in info["data_offsets"])
        if end - begin != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize or base + end > size:
            raise InputError(f"tensor `{key}` in {fname} is cut short or inconsistent with its header: the file is corrupt.")
        if int(np.prod(shape, dtype=np.int64)) == 0:
            out[key] = np.empty(shape, dtype)
        else:
            out[key] = np.memmap(path, dtype=dtype, mode="r", offset=base + begin, shape=shape)
    return out


def _pick(arrays: Mapping[str, np.ndarray], role: str, cols: Mapping[str, str], fname: str) -> str | None:
    given = cols.get(role)
    if given is not None:
        if given not in arrays:
            raise InputError(f"{fname} has no tensor `{given}` (given for {role}); tensors: {', '.join(f'`{n}`' for n in arrays)}.")
        return given
    return next((a for a in COLUMN_ALIASES[role] if a in arrays), None)


def safetensors_sequences(path: Path, fname: str, cols: Mapping[str, str], k: int, split: str | None, scan: str) -> SequenceSet:
    arrays = _safetensors_arrays(path, fname)
    ckey, tkey = _pick(arrays, "contexts", cols, fname), _pick(arrays, "targets", cols, fname)
    if ckey is None or tkey is None:
        if _pick(arrays, "vector", cols, fname) is not None:
            return store_to_lazy_windows(*safetensors_store(path, fname, cols, arrays), k, fname, split, scan)
        raise InputError(
            f"{fname} has no contexts/targets or vector tensors: tensors {', '.join(f'`{n}`' for n in arrays) or 'none'}; "
            f"expected contexts as one of {', '.join(CONTEXT_ALIASES)} and targets as one of {', '.join(TARGET_ALIASES)}, "
            "or `vectors`/`embedding` with `article_ids`."
        )
    contexts, targets = arrays[ckey], arrays[tkey]
    notes = [n for n in (require_float(contexts.dtype, ckey, fname), require_float(targets.dtype, tkey, fname)) if n]
    check_sequence_shapes(contexts.shape, targets.shape, fname, ckey, tkey)
    n = contexts.shape[0]
    idkey = _pick(arrays, "id", cols, fname)
    article_ids = None
    if idkey is not None:
        ids = arrays[idkey]
        if ids.shape != (n,) or ids.dtype.kind not in "iu":
            raise InputError(f"`{idkey}` in {fname} must be an integer tensor of shape ({n},); got {ids.dtype} {ids.shape}.")
        article_ids = np.asarray(ids, dtype=np.int64)
    extras = {key: np.asarray(a) for key, a in arrays.items() if key not in (ckey, tkey, idkey) and a.ndim >= 1 and a.shape[0] == n}
    report = scan_sequences(contexts, targets, fname, ckey, tkey, notes, scan=scan)
    return SequenceSet(
        contexts=contexts,
        targets=targets,
        article_ids=article_ids,
        id_source="given" if article_ids is not None else "none",
        source=fname,
        split=split,
        fmt="safetensors",
        extras=extras,
        attrs={"keys": {"contexts": ckey, "targets": tkey, "article_ids": idkey}, "validation": report.summary(),
               "dtype": str(contexts.dtype)},
        valid=report.valid,
    )


def safetensors_store(
    path: Path, fname: str, cols: Mapping[str, str], arrays: dict[str, np.ndarray] | None = None
) -> tuple[ArticleStore, dict[str, Any]]:
    arrays = arrays if arrays is not None else _safetensors_arrays(path, fname)
    vkey = _pick(arrays, "vector", cols, fname)
    idkey = _pick(arrays, "id", cols, fname)
    if vkey is None or idkey is None:
        raise InputError(
            f"{fname} is not an article store: tensors {', '.join(f'`{n}`' for n in arrays) or 'none'}; a store needs a "
            f"vector tensor ({', '.join(COLUMN_ALIASES['vector'])}) and an article id tensor ({', '.join(COLUMN_ALIASES['id'])})."
        )
    vectors = arrays[vkey]
    require_float(vectors.dtype, vkey, fname)
    if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.shape[1] == 0:
        raise InputError(f"`{vkey}` in {fname} must have shape (N, D) with N, D >= 1; got {vectors.shape}.")
    n = vectors.shape[0]
    raw = np.asarray(arrays[idkey])
    if raw.shape != (n,) or raw.dtype.kind not in "iu":
        raise InputError(f"`{idkey}` in {fname} must be an integer tensor of shape ({n},); got {raw.dtype} {raw.shape}.")
    raw_keys = raw.astype(np.int64)
    pkey = _pick(arrays, "position", cols, fname)
    chunk_index = None
    if pkey is not None:
        pos = np.asarray(arrays[pkey])
        if pos.shape != (n,) or pos.dtype.kind not in "iu":
            raise InputError(f"`{pkey}` in {fname} must be an integer tensor of shape ({n},); got {pos.dtype} {pos.shape}.")
        chunk_index = pos.astype(np.int64)
        _check_chunk_order(raw_keys, chunk_index, fname)
    ukeys, codes = np.unique(raw_keys, return_inverse=True)
    return ArticleStore(
        vectors=vectors,
        article_ids=codes.reshape(-1).astype(np.int64),
        chunk_index=chunk_index,
        article_names=np.array([str(int(x)) for x in ukeys], dtype=str),
        source=fname,
        fmt="safetensors_store",
        article_keys=ukeys.astype(np.int64),
    ), {"kind": "safetensors", "columns": {"vector": vkey, "id": idkey, "position": pkey}}

"""Read Parquet, Arrow IPC / Feather, Hugging Face ``save_to_disk`` directories and ``.safetensors``.

Layouts (README "Input files"):

- **article store**, one row per chunk: a vector column (``embedding``, ``embeddings``, ``vector``,
  ``vectors`` or ``emb``; ``fixed_size_list<float>`` or ``list<float>``), an article id column
  (``article_id``, ``article_ids``, ``doc_id``, ``article_index``; integer or string) and optionally a
  chunk position column (``chunk_index``, ``position``, ...; without it row order is chunk order).
- **window file**: ``contexts`` as ``fixed_size_list<fixed_size_list<float32, D>, K>`` (or nested
  ``list``), ``targets`` as ``fixed_size_list<float32, D>``, optional ``article_id``; other numeric
  columns are carried as per-window extras. Any context / target alias of the npz forms works.
- Text columns (``text``, titles, ...) are ignored. Column names are guessed, or given with
  ``columns={"vector": ..., "id": ..., "position": ..., "contexts": ..., "targets": ...}`` (CLI:
  ``lvmdiag --columns vector=emb,id=doc_id ...``).

Parquet (one file, or a directory of shards read in sorted order) is read one row group at a time,
Arrow files one record batch at a time (memory-mapped, zero-copy); a ``fixed_size_list`` column
without nulls becomes a numpy view of its values buffer. Sequences are :class:`~lvmdiag.data.lazy.BlockRows`
(decoded on demand, a couple of blocks cached) and windows of a store are gathered lazily from the
chunk vectors, so memory stays bounded by a few row groups. ``.safetensors`` tensors are
memory-mapped from the file (the format is a JSON header then raw little-endian data).

pyarrow is imported only here and only when such a file is read; without it the reader says
"install lvmdiag[parquet]" in one line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lvmdiag.data.arrow_sources import (
    _hf_splits,
    _ids,
    _is_scalar_numeric,
    _plain_column,
    _resolve,
    _Source,
    _vector_rows,
    arrow_kind,
    open_source,
)
from lvmdiag.data.columnar import (
    COLUMN_ALIASES,
    COLUMN_ROLES,
    columns_for,
    parse_columns,
    set_default_columns,
    store_to_lazy_windows,
)
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.data.store import ArticleStore, _check_chunk_order
from lvmdiag.data.validate import check_sequence_shapes, require_float, scan_sequences
from lvmdiag.errors import InputError

__all__ = [
    "COLUMN_ALIASES",
    "COLUMN_ROLES",
    "arrow_kind",
    "is_columnar_path",
    "load_arrow_sequences",
    "load_arrow_store",
    "parse_columns",
    "set_default_columns",
]


def load_arrow_store(
    path: Path, fname: str, kind: str, columns: Mapping[str, str] | None = None
) -> ArticleStore:
    """An article store (one row per chunk) from Parquet / Arrow / an HF dataset directory / safetensors."""
    cols = columns_for(columns)
    if kind == "safetensors":
        from lvmdiag.data.safetensors_format import safetensors_store

        return safetensors_store(path, fname, cols)[0]
    if kind == "hf_dict":
        raise InputError(f"{fname} is a DatasetDict of {', '.join(_hf_splits(path, fname))}: pass one split's directory as the store.")
    src = open_source(path, fname, kind)
    return _store_from_source(src, cols, kind)[0]


def _store_from_source(src: _Source, cols: Mapping[str, str], kind: str) -> tuple[ArticleStore, dict[str, Any]]:
    """The store, and which columns were used / ignored (for provenance)."""
    vcol = _resolve(src, "vector", cols, True, "vector")
    idcol = _resolve(src, "id", cols, True, "article id")
    pcol = _resolve(src, "position", cols, False, "chunk position")
    assert vcol is not None and idcol is not None
    if src.n_rows == 0:
        raise InputError(f"`{vcol}` in {src.label} has no rows: the store is empty; regenerate it.")
    vectors = _vector_rows(src, vcol, 1)
    if vectors.shape[1] == 0:
        raise InputError(f"`{vcol}` in {src.label} has vectors of dimension D = 0: regenerate the store.")
    raw_keys, names_by_key = _ids(src, idcol)
    chunk_index = None
    if pcol is not None:
        pos = _plain_column(src, pcol)
        if pos.dtype.kind not in "iu":
            raise InputError(f"chunk position column `{pcol}` in {src.label} must hold integers; got {pos.dtype}.")
        chunk_index = pos.astype(np.int64)
        _check_chunk_order(raw_keys, chunk_index, src.label)
    ukeys, codes = np.unique(raw_keys, return_inverse=True)
    names = np.array([names_by_key.get(int(kk), str(int(kk))) for kk in ukeys], dtype=str)
    info = {"kind": kind, "columns": {"vector": vcol, "id": idcol, "position": pcol}, "blocks": len(src.sizes),
            "ignored_columns": [n for n in src.names if n not in (vcol, idcol, pcol)]}
    return ArticleStore(
        vectors=vectors,
        article_ids=codes.reshape(-1).astype(np.int64),
        chunk_index=chunk_index,
        article_names=names,
        source=src.label,
        fmt=f"{kind}_store",
        article_keys=ukeys.astype(np.int64),
    ), info


def load_arrow_sequences(
    path: Path,
    fname: str,
    kind: str,
    *,
    k: int,
    want: str | None,
    single: bool,
    scan: str,
    columns: Mapping[str, str] | None = None,
) -> dict[str, SequenceSet]:
    """Window files or article stores in a columnar format, as validated (lazy) SequenceSets."""
    cols = columns_for(columns)
    if kind == "hf_dict":
        splits = _hf_splits(path, fname)
        if want is not None and want in splits:
            chosen = [want]
        elif single and want is None and len(splits) > 1:
            raise InputError(
                f"{fname} holds {len(splits)} splits ({', '.join(splits)}): pass one split's directory "
                f"(e.g. {fname}/{splits[0]}), or read all with load_split_files."
            )
        elif want is not None and single and len(splits) > 1:
            raise InputError(f"{fname} has no split {want!r}; it holds {', '.join(splits)}: pass {fname}/<split>.")
        else:
            chosen = splits
        out = {}
        for s in chosen:
            sub = path / s
            seq = _sequences_from(open_source(sub, f"{fname}/{s}", "hf_dataset"), cols, k, want or s, scan, "hf_dataset")
            out[want or s] = seq
        return out
    name = want or (path.name if path.is_dir() else path.stem)
    if kind == "safetensors":
        from lvmdiag.data.safetensors_format import safetensors_sequences

        return {name: safetensors_sequences(path, fname, cols, k, want, scan)}
    return {name: _sequences_from(open_source(path, fname, kind), cols, k, want, scan, kind)}


def _sequences_from(src: _Source, cols: Mapping[str, str], k: int, split: str | None, scan: str, kind: str) -> SequenceSet:
    ccol = _resolve(src, "contexts", cols, False, "contexts")
    tcol = _resolve(src, "targets", cols, False, "targets")
    if ccol is None or tcol is None:
        if ccol is None and tcol is None and _resolve(src, "vector", cols, False, "vector") is not None:
            return store_to_lazy_windows(*_store_from_source(src, cols, kind), k, src.label, split, scan)
        present = ccol or tcol
        what = (f"`{present}` but no {'targets' if ccol else 'contexts'} column" if present else
                f"no contexts/targets columns and no vector column (looked for {', '.join(COLUMN_ALIASES['vector'])})")
        raise InputError(
            f"{src.label} has {what}; columns: {', '.join(f'`{n}`' for n in src.names) or 'none'}. A window file needs "
            "contexts and targets columns, an article store a vector and an article id column: name them with "
            "--columns vector=NAME,id=NAME (or contexts=NAME,targets=NAME)."
        )
    if src.n_rows == 0:
        raise InputError(f"`{ccol}` in {src.label} has no rows (N = 0): the file is empty; regenerate it.")
    contexts = _vector_rows(src, ccol, 2)
    targets = _vector_rows(src, tcol, 1)
    notes = [n for n in (require_float(contexts.dtype, ccol, src.label), require_float(targets.dtype, tcol, src.label)) if n]
    check_sequence_shapes(contexts.shape, targets.shape, src.label, ccol, tcol)
    idcol = _resolve(src, "id", cols, False, "article id")
    article_ids = None
    names_by_key: dict[int, str] = {}
    if idcol is not None:
        article_ids, names_by_key = _ids(src, idcol)
    extras: dict[str, np.ndarray] = {}
    ignored = []
    for f in src.schema:
        if f.name in (ccol, tcol, idcol):
            continue
        if _is_scalar_numeric(f.type):
            extras[f.name] = _plain_column(src, f.name)
        else:
            ignored.append(f.name)
    report = scan_sequences(contexts, targets, src.label, ccol, tcol, notes, scan=scan)
    attrs: dict[str, Any] = {
        "keys": {"contexts": ccol, "targets": tcol, "article_ids": idcol},
        "validation": report.summary(),
        "dtype": str(contexts.dtype),
        "columnar": {"kind": kind, "blocks": len(src.sizes), "ignored_columns": ignored},
    }
    if names_by_key:
        attrs["article_names"] = names_by_key
    return SequenceSet(
        contexts=contexts,
        targets=targets,
        article_ids=article_ids,
        id_source="given" if article_ids is not None else "none",
        source=src.label,
        split=split,
        fmt=kind if kind in ("parquet", "arrow", "hf_dataset") else "parquet",
        extras=extras,
        attrs=attrs,
        valid=report.valid,
    )


def is_columnar_path(path: str | os.PathLike[str]) -> str | None:
    """The columnar kind of an existing path, or None (npz, .npy directories)."""
    p = Path(path)
    return arrow_kind(p) if p.exists() else None

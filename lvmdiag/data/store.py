"""Article stores (one row per chunk) and the stride-1 windows built from them.

Three on-disk forms are read (UPSTREAM_FORMATS.md and the bundled example):

- ``arxiv_store``: ``vectors``, ``article_ids`` (strings, chunk order = row order), optional
  ``concept_texts``, ``arxiv_metadata``;
- ``wikipedia_store``: ``vectors``, ``article_indices``, ``chunk_indices``, optional ``cpe_ids``,
  ``concept_texts``, ``article_titles``;
- ``python_docs_store``: ``vectors``, ``article_ids`` (int), ``chunk_index``, ``article_names``
  (indexed by article id, or paired with an ``article_keys`` array of the same length, as
  ``lvmdiag embed`` writes it).

Windows never cross articles (:func:`lvmdiag.data.windows.window_indices`). Their article ids are
*stable keys* (the integer id from the file, or a 63-bit hash of a string id), so windows built from
two stores cut from one corpus (a train store and a val store) can be compared for shared articles.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lvmdiag.data._npz import NpzArchive
from lvmdiag.data.validate import block_rows_for, file_label, require_float, warn
from lvmdiag.data.windows import unsorted_order, window_indices
from lvmdiag.errors import InputError

STORE_FORMS = ("arxiv_store", "wikipedia_store", "python_docs_store")


@dataclass(frozen=True)
class ArticleStore:
    """Chunk vectors of whole articles.

    Attributes
    ----------
    vectors : (N, D) float array (memory-mapped when the archive stores it uncompressed)
    article_ids : (N,) int64 dense article codes 0..A-1 (local to this store)
    chunk_index : (N,) int64 position of each chunk in its article, or None (row order is chunk order)
    article_names : (A,) str name of each code (title, paper id or page name; the id as text if none)
    source : path it was read from
    fmt : "arxiv_store", "wikipedia_store" or "python_docs_store"
    article_keys : (A,) int64 stable key per code: the file's integer id, or a hash of a string id,
        comparable across stores cut from one corpus
    extras : other per-chunk arrays read from the file (e.g. ``concept_texts`` when allowed)
    """

    vectors: np.ndarray
    article_ids: np.ndarray
    chunk_index: np.ndarray | None
    article_names: np.ndarray
    source: str
    fmt: str
    article_keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_chunks(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def n_articles(self) -> int:
        return int(self.article_names.shape[0])

    @property
    def d(self) -> int:
        return int(self.vectors.shape[1])


def ids_to_keys(raw: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """Article ids as int64 keys: integers as they are, strings by :func:`string_key` (with their names)."""
    if raw.dtype.kind in "iu":
        return raw.astype(np.int64), {}
    uniq, inv = np.unique(raw.astype(str), return_inverse=True)
    ukeys = np.array([string_key(s) for s in uniq], dtype=np.int64)
    return ukeys[inv.reshape(-1)], {int(k): str(s) for k, s in zip(ukeys, uniq)}


def string_key(text: str) -> int:
    """A stable non-negative 63-bit integer key for a string article id."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little") >> 1


def detect_store_form(keys: list[str]) -> str | None:
    """Which article-store form a set of archive keys is, or None when there are no ``vectors``."""
    if "vectors" not in keys:
        return None
    if "article_indices" in keys:
        return "wikipedia_store"
    if "article_ids" in keys and "chunk_index" in keys:
        return "python_docs_store"
    if "article_ids" in keys:
        return "arxiv_store"
    return "unknown"


def load_article_store(
    path: str | os.PathLike[str], allow_pickle: bool = False, columns: Mapping[str, str] | None = None
) -> ArticleStore:
    """Read an article store (.npz in any of the three forms, or a columnar file).

    Parameters
    ----------
    path : the ``.npz`` file, or a Parquet file / directory of shards, Arrow IPC / Feather file,
        ``datasets`` ``save_to_disk`` directory or ``.safetensors`` file with one row per chunk
        (:mod:`lvmdiag.data.arrow_formats`; vectors are then read lazily, block by block)
    allow_pickle : read object arrays (texts, string ids stored as objects); unpickling can run code
    columns : for columnar inputs, column names by role ("vector", "id", "position") where the
        common names are not used

    Returns
    -------
    ArticleStore with dense article codes, chunk order, names and stable keys.
    """
    fname = file_label(path)
    from lvmdiag.data.arrow_formats import arrow_kind, load_arrow_store

    p = Path(path)
    kind = arrow_kind(p) if p.exists() else None
    if kind is not None:
        return load_arrow_store(p, fname, kind, columns)
    with NpzArchive(path, fname) as arc:
        return _read_store(arc, fname, allow_pickle)


def _read_store(arc: NpzArchive, fname: str, allow_pickle: bool) -> ArticleStore:
    keys = arc.keys
    form = detect_store_form(keys)
    if form is None or form == "unknown":
        raise InputError(
            f"{fname} is not an article store: keys found {', '.join(f'`{k}`' for k in keys) or 'none'}; "
            "a store needs `vectors` plus `article_ids` (arXiv / python-docs form) or `article_indices` "
            "and `chunk_indices` (Wikipedia form)."
        )
    vshape = arc.shape("vectors")
    require_float(arc.dtype("vectors"), "vectors", fname, allow_pickle)
    if len(vshape) != 2:
        raise InputError(f"`vectors` in {fname} must have shape (N, D); got {vshape}.")
    n = vshape[0]
    if n == 0:
        raise InputError(f"`vectors` in {fname} has no rows: the store is empty; regenerate it.")
    if vshape[1] == 0:
        raise InputError(f"`vectors` in {fname} has vectors of dimension D = 0; got shape {vshape}: regenerate the store.")
    vectors = arc.read("vectors")
    skipped: list[str] = []

    def per_chunk(key: str, kind: str, required: bool) -> np.ndarray | None:
        if key not in arc:
            if required:
                raise InputError(f"{fname} has `vectors` but no `{key}`: add the {kind} of every chunk.")
            return None
        shape, dtype = arc.shape(key), arc.dtype(key)
        if dtype.hasobject and not allow_pickle:
            if required:
                raise InputError(
                    f"`{key}` in {fname} is an object array; reading it needs unpickling, which can run code "
                    "from the file: pass --allow-pickle (allow_pickle=True) only if you trust it, or re-save "
                    "it as a string or integer array."
                )
            skipped.append(key)
            return None
        arr = np.asarray(arc.read(key, allow_pickle=allow_pickle, mmap=False))
        if arr.ndim < 1 or arr.shape[0] != n:
            if required:
                raise InputError(f"`{key}` in {fname} must have one entry per row of `vectors` ({n}); got shape {shape}.")
            return None
        return arr

    names_by_key: dict[int, str] = {}
    chunk_index: np.ndarray | None
    if form == "wikipedia_store":
        raw = per_chunk("article_indices", "article index", True)
        chunk = per_chunk("chunk_indices", "chunk index", True)
        _require_int(raw, "article_indices", fname)
        _require_int(chunk, "chunk_indices", fname)
        raw_keys = raw.astype(np.int64)
        chunk_index = chunk.astype(np.int64)
        titles = per_chunk("article_titles", "title", False)
        if titles is not None:
            for kk, tt in zip(raw_keys, titles):
                names_by_key.setdefault(int(kk), str(tt))
        text_keys = ("cpe_ids", "concept_texts")
    elif form == "python_docs_store":
        raw = per_chunk("article_ids", "article id", True)
        chunk = per_chunk("chunk_index", "chunk index", True)
        _require_int(raw, "article_ids", fname)
        _require_int(chunk, "chunk_index", fname)
        raw_keys = raw.astype(np.int64)
        chunk_index = chunk.astype(np.int64)
        if "article_keys" in arc and "article_names" in arc and not arc.dtype("article_names").hasobject:
            # names paired with their ids (lvmdiag embed: ids are stable keys, too large to index a table)
            akeys = np.asarray(arc.read("article_keys", mmap=False)).reshape(-1)
            anames = np.asarray(arc.read("article_names", mmap=False)).reshape(-1)
            if akeys.dtype.kind in "iu" and akeys.shape == anames.shape:
                names_by_key.update({int(kk): str(nn) for kk, nn in zip(akeys, anames)})
        elif "article_names" in arc and not (arc.dtype("article_names").hasobject and not allow_pickle):
            names = np.asarray(arc.read("article_names", allow_pickle=allow_pickle, mmap=False))
            for kk in np.unique(raw_keys):
                if 0 <= kk < names.shape[0]:
                    names_by_key[int(kk)] = str(names[kk])
        elif "article_names" in arc:
            skipped.append("article_names")
        text_keys = ()
    else:  # arxiv_store: string ids, row order is chunk order
        raw = per_chunk("article_ids", "article id", True)
        chunk_index = None
        raw_keys, string_names = ids_to_keys(raw)
        names_by_key.update(string_names)
        text_keys = ("concept_texts",)
    extras: dict[str, np.ndarray] = {}
    for key in text_keys:
        arr = per_chunk(key, "text", False)
        if arr is not None:
            extras[key] = arr
    for key in keys:
        if key not in extras and key not in skipped and arc.dtype(key).hasobject and not allow_pickle:
            if key not in ("vectors",) and key not in text_keys:
                skipped.append(key)
    if skipped:
        warn(
            f"{fname}: skipped object arrays {', '.join(f'`{k}`' for k in sorted(set(skipped)))} (reading them needs "
            "unpickling, which can run code); pass --allow-pickle (allow_pickle=True) if you trust the file."
        )
    if chunk_index is not None:
        _check_chunk_order(raw_keys, chunk_index, fname)
    ukeys, codes = np.unique(raw_keys, return_inverse=True)
    names = np.array([names_by_key.get(int(kk), str(int(kk))) for kk in ukeys], dtype=str)
    return ArticleStore(
        vectors=vectors,
        article_ids=codes.reshape(-1).astype(np.int64),
        chunk_index=chunk_index,
        article_names=names,
        source=fname,
        fmt=form,
        article_keys=ukeys.astype(np.int64),
        extras=extras,
    )


def _require_int(arr: np.ndarray, key: str, fname: str) -> None:
    if arr.dtype.kind not in "iu":
        raise InputError(f"`{key}` in {fname} must be an integer array; got {arr.dtype}. Convert it with astype(np.int64).")


def _check_chunk_order(article: np.ndarray, chunk: np.ndarray, fname: str) -> None:
    """Warn about repeated or missing chunk positions (windows would then join non-adjacent chunks)."""
    order = unsorted_order(article, chunk)
    a, c = (article, chunk) if order is None else (article[order], chunk[order])
    same = a[1:] == a[:-1]
    step = np.diff(c)
    n_repeat = int((same & (step == 0)).sum())
    n_gap = int((same & (step > 1)).sum())
    if n_repeat:
        raise InputError(
            f"`chunk_index` in {fname} repeats a position {n_repeat} times within an article: "
            "chunk order is ambiguous; deduplicate the store."
        )
    if n_gap:
        warn(
            f"{fname}: chunk positions skip {n_gap} times within articles; windows join the chunks on either side of each gap."
        )


def checked_window_rows(store: "ArticleStore", k: int, fname: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`store_windows_rows` for a reader: a k below 1, or no article long enough, is an InputError."""
    if k < 1:
        raise InputError(f"window length k must be >= 1; got {k}.")
    ctx_rows, tgt_rows, codes = store_windows_rows(store, k)
    if tgt_rows.size == 0:
        raise InputError(
            f"{fname}: no article has more than k = {k} chunks, so no window of {k} context chunks plus a target "
            "exists; use a smaller k."
        )
    return ctx_rows, tgt_rows, codes


def store_windows_rows(store: ArticleStore, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(context_rows (W, k), target_rows (W,), window_code (W,)) of every stride-1 window of ``store``."""
    return window_indices(store.article_ids, k, store.chunk_index)


def gather_windows(store: ArticleStore, ctx_rows: np.ndarray, tgt_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Materialise window contexts (W, k, D) and targets (W, D) as float32, gathering in blocks."""
    w, k = ctx_rows.shape
    d = store.d
    contexts = np.empty((w, k, d), dtype=np.float32)
    targets = np.empty((w, d), dtype=np.float32)
    step = block_rows_for((k + 1) * d * 4)
    vec = store.vectors
    for s in range(0, w, step):
        contexts[s : s + step] = np.asarray(vec[ctx_rows[s : s + step]], dtype=np.float32)
        targets[s : s + step] = np.asarray(vec[tgt_rows[s : s + step]], dtype=np.float32)
    return contexts, targets


def store_summary(store: ArticleStore) -> dict[str, Any]:
    """Small JSON-safe description of a store for ``SequenceSet.attrs``."""
    return {"fmt": store.fmt, "n_chunks": store.n_chunks, "n_articles": store.n_articles, "dim": store.d}

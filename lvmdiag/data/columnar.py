"""Shared by the columnar readers: column roles and the names guessed for them, the process-wide
column names (the CLI's global ``--columns``), and lazily gathered windows of an article store."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from lvmdiag.data.lazy import BlockRows, GatherRows
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.data.store import ArticleStore, checked_window_rows
from lvmdiag.data.store_scan import scan_store_windows
from lvmdiag.data.validate import CONTEXT_ALIASES, TARGET_ALIASES
from lvmdiag.errors import InputError

__all__ = ["COLUMN_ALIASES", "COLUMN_ROLES", "columns_for", "parse_columns", "set_default_columns", "store_to_lazy_windows"]

#: roles a column can play, and the names guessed for each (first match wins)
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "vector": ("embedding", "embeddings", "vector", "vectors", "emb"),
    "id": ("article_id", "article_ids", "doc_id", "article_index", "article_indices"),
    "position": ("chunk_index", "chunk_indices", "position", "chunk_idx", "chunk_position"),
    "contexts": CONTEXT_ALIASES,
    "targets": TARGET_ALIASES,
}
COLUMN_ROLES = tuple(COLUMN_ALIASES)

_default_columns: dict[str, str] = {}


def set_default_columns(columns: Mapping[str, str] | None) -> None:
    """Column names used when a reader is not given ``columns`` (the CLI's global ``--columns``)."""
    _default_columns.clear()
    _default_columns.update(_check_roles(dict(columns or {}), "--columns"))


def parse_columns(text: str) -> dict[str, str]:
    """``"vector=emb,id=doc_id"`` -> ``{"vector": "emb", "id": "doc_id"}`` (roles checked)."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        role, sep, name = part.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--columns takes role=name pairs, e.g. vector=emb,id=doc_id; got {part!r}.")
        out[role.strip()] = name.strip()
    return _check_roles(out, "--columns")


def _check_roles(columns: dict[str, str], where: str) -> dict[str, str]:
    bad = [r for r in columns if r not in COLUMN_ALIASES]
    if bad:
        raise InputError(f"{where}: unknown column role {', '.join(map(repr, bad))}; roles are {', '.join(COLUMN_ROLES)}.")
    return columns


def columns_for(columns: Mapping[str, str] | None) -> dict[str, str]:
    """The column names to use: the process-wide defaults, overridden by ``columns``."""
    return {**_default_columns, **_check_roles(dict(columns or {}), "columns")}


#: a store whose windows reach further than this many rows apart (in more than 1% of windows) is
#: read into memory once: gathering scattered rows block by block would re-read the file per block
_SCATTER_ROWS = 1 << 16


def store_to_lazy_windows(
    store: ArticleStore, info: dict[str, Any], k: int, fname: str, split: str | None, scan: str
) -> SequenceSet:
    """Stride-1 windows of a store as lazy gathers of its chunk vectors (no (K + 1)-fold copy).

    Windows are ordered by file position (within an article, chunk order), so a streaming pass
    reads the file about once; validation reads each chunk once (:mod:`lvmdiag.data.store_scan`).
    A store whose articles are scattered over the file is read into memory first (its vectors, not
    its windows).
    """
    ctx_rows, tgt_rows, codes = checked_window_rows(store, k, fname)
    order = np.argsort(ctx_rows[:, 0], kind="stable")
    if not np.array_equal(order, np.arange(order.size)):
        ctx_rows, tgt_rows, codes = ctx_rows[order], tgt_rows[order], codes[order]
    vectors = store.vectors
    span = np.maximum(ctx_rows.max(axis=1), tgt_rows) - np.minimum(ctx_rows.min(axis=1), tgt_rows)
    note = None
    # a window of a grouped store spans K + 1 neighbouring rows; "far" is beyond a typical block
    # (small trailing row groups or shards must not count) and well beyond one window
    far = max(min(_SCATTER_ROWS, int(np.median(vectors.sizes))), 8 * (k + 1)) if isinstance(vectors, BlockRows) else 0
    if isinstance(vectors, BlockRows) and np.mean(span > far) > 0.01:
        vectors = np.asarray(vectors)
        note = "articles are scattered over the file: chunk vectors were read into memory"
        info = {**info, "in_memory": True}
    contexts = GatherRows(vectors, ctx_rows)
    targets = GatherRows(vectors, tgt_rows)
    # one read of the chunks validates every window and keeps the dot products the bias pass needs
    report, gram = scan_store_windows(vectors, ctx_rows, tgt_rows, contexts, targets, fname,
                                      [note] if note else [], scan=scan,
                                      key=(info.get("columns") or {}).get("vector") or "vectors")
    contexts.window_gram = targets.window_gram = gram
    from lvmdiag.data.readers import store_window_set

    return store_window_set(store, contexts, targets, ctx_rows, tgt_rows, codes, fname, split, k, report,
                            {"columnar": info})

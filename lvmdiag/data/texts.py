"""Chunk texts beside an article store, so reports can show the text behind a row.

A texts file sits beside its store: ``<stem>.texts.jsonl`` (or ``.jsonl.gz``) for ``<stem>.npz`` or
``<stem>.parquet``, one JSON object per chunk with ``article_id``, ``chunk_index`` and ``text``
(``lvmdiag embed`` writes it; the shared python-docs ``python_docs_texts.jsonl.gz`` has the same keys). Lines are matched to
store rows by (article id as stored, chunk position), never by line number.

:func:`window_text` maps a (window row, slot) of a :class:`SequenceSet` built from a store to its
chunk text; :func:`one_line` cuts it for a table cell. Both return None when no text is known, and
reading is cached per store file, so a report asks cheaply for a handful of rows.
"""

from __future__ import annotations

import gzip
import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

TEXTS_SUFFIXES = (".texts.jsonl", ".texts.jsonl.gz")


def texts_path_for(store: str | os.PathLike[str]) -> Path:
    """Where the texts file of ``store`` is written: ``<stem>.texts.jsonl`` beside it."""
    p = Path(store)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(stem + TEXTS_SUFFIXES[0])


def find_texts(store: str | os.PathLike[str]) -> Path | None:
    """The texts file beside ``store`` (``.texts.jsonl`` or ``.texts.jsonl.gz``), or None."""
    plain = texts_path_for(store)
    for cand in (plain, plain.with_name(plain.name + ".gz")):
        if cand.is_file():
            return cand
    return None


def read_texts(path: str | os.PathLike[str]) -> dict[tuple[str, int], str]:
    """(article id as text, chunk_index) -> text of every line of a texts file."""
    p = Path(path)
    opener = gzip.open if p.name.endswith(".gz") else open
    out: dict[tuple[str, int], str] = {}
    with opener(p, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                out[(str(row["article_id"]), int(row["chunk_index"]))] = str(row["text"])
    return out


class StoreTexts:
    """Text of each row of one article store, from the texts file beside it."""

    def __init__(self, store: str | os.PathLike[str], texts: str | os.PathLike[str]):
        if Path(store).suffix.lower() != ".npz":  # a columnar store (Parquet, ...): its stable keys and positions
            from lvmdiag.data.store import load_article_store

            st = load_article_store(store)
            aid = st.article_keys[st.article_ids]
            pos = st.chunk_index if st.chunk_index is not None else _positions(st.article_ids)
            self._init(aid, pos, texts)
            return
        with np.load(store, allow_pickle=False) as z:
            keys = set(z.files)
            if "article_indices" in keys:  # Wikipedia form
                aid, pos = z["article_indices"], z["chunk_indices"]
            elif "chunk_index" in keys:  # python-docs form and lvmdiag embed output
                aid, pos = z["article_ids"], z["chunk_index"]
            else:  # arXiv form: row order is chunk order within each article
                aid = z["article_ids"]
                pos = _positions(aid)
        self._init(aid, pos, texts)

    def _init(self, aid: np.ndarray, pos: np.ndarray, texts: str | os.PathLike[str]) -> None:
        self._aid = np.asarray(aid).astype(str)
        self._pos = np.asarray(pos).astype(np.int64)
        self._texts = read_texts(texts)

    def row_text(self, row: int) -> str | None:
        """The text of store row ``row``, or None when the texts file has no line for it."""
        if not 0 <= row < self._aid.shape[0]:
            return None
        return self._texts.get((str(self._aid[row]), int(self._pos[row])))


def _positions(article_ids: np.ndarray) -> np.ndarray:
    """Position of each row within its article, counting rows in file order."""
    seen: dict[object, int] = {}
    out = np.empty(article_ids.shape[0], np.int64)
    for i, a in enumerate(article_ids.tolist()):
        out[i] = seen.get(a, 0)
        seen[a] = out[i] + 1
    return out


@lru_cache(maxsize=16)
def _store_texts(store: str, mtime: float) -> StoreTexts | None:
    texts = find_texts(store)
    if texts is None:
        return None
    try:
        return StoreTexts(store, texts)
    except (OSError, ValueError, KeyError):  # unreadable texts (or store) never break a report: the text is just not shown
        return None


def window_text(seq: object, row: int, slot: int) -> str | None:
    """Text of chunk ``slot`` (0..K-1 context, K = target) of window ``row`` of a SequenceSet, or None.

    Known for windows built from an article store with a texts file beside it, and for sequence files
    read with their ``context_texts`` / ``target_texts`` arrays.
    """
    extras = getattr(seq, "extras", {}) or {}
    k = getattr(seq, "k", None)
    if k is None or row < 0 or slot < 0:
        return None
    if slot < k and "context_texts" in extras:
        try:
            return str(extras["context_texts"][row][slot])
        except (IndexError, TypeError):
            return None
    if slot == k and "target_texts" in extras:
        return str(extras["target_texts"][row])
    if getattr(seq, "fmt", None) != "article_store" or "target_indices" not in extras:
        return None
    source = str(getattr(seq, "source", ""))
    try:
        mtime = os.stat(source).st_mtime
    except OSError:
        return None
    st = _store_texts(source, mtime)
    if st is None:
        return None
    store_row = int(extras["context_indices"][row, slot]) if slot < k else int(extras["target_indices"][row])
    return st.row_text(store_row)


def one_line(text: str | None, width: int = 60) -> str:
    """``text`` on one line (whitespace collapsed, ``|`` escaped for markdown tables), cut to ``width`` with …."""
    if not text:
        return "—"
    flat = " ".join(text.split())
    if len(flat) > width:
        flat = flat[: width - 1].rstrip() + "…"
    return flat.replace("|", "\\|")

"""Turn input records into the ordered chunk list to embed (articles chunked, short articles dropped).

Each article gets a *stable key* as its stored id: the original id itself when every id of the input
is an integer, else a 63-bit hash of the id's text (:func:`lvmdiag.data.store.string_key`, the key
the store reader gives string ids). So two stores embedded from one corpus (train text and val text)
can be compared for shared articles, and unrelated articles never share an id by accident. The
original ids become ``article_names``. Chunks are numbered 0..L-1 within each article (pre-chunked
input keeps its own ``chunk_index`` values). Rows follow the input's article order.
An article with fewer than ``min_chunks`` chunks (an empty one included) is dropped and counted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from lvmdiag.data.store import string_key
from lvmdiag.embed.chunking import ChunkParams, chunk_article, word_count
from lvmdiag.embed.inputs import TextRecord
from lvmdiag.errors import InputError


@dataclass(frozen=True)
class ChunkPlan:
    """The chunks to embed, in output row order.

    Attributes
    ----------
    texts : chunk texts, rows grouped by article (input order), chunks in order
    article_ids : (N,) int64 stable article key of each chunk
    chunk_index : (N,) int64 position of each chunk in its article
    article_keys : (A,) int64 stable key of each kept article, in row order
    article_names : (A,) original id of each kept article (same order as ``article_keys``)
    mode : "chunked here" (whole articles cut by :mod:`lvmdiag.embed.chunking`) or "pre-chunked"
    n_input_articles : articles in the input
    n_dropped_articles, n_dropped_chunks : articles (and their chunks) under ``min_chunks``
    """

    texts: list[str]
    article_ids: np.ndarray
    chunk_index: np.ndarray
    article_keys: np.ndarray
    article_names: list[str]
    mode: str
    n_input_articles: int
    n_dropped_articles: int
    n_dropped_chunks: int

    @property
    def n_chunks(self) -> int:
        return len(self.texts)

    def sha256(self) -> str:
        """Fingerprint of exactly what is embedded (texts and their keys), for the resume check."""
        h = hashlib.sha256()
        for a, c, t in zip(self.article_ids.tolist(), self.chunk_index.tolist(), self.texts):
            h.update(json.dumps([a, c, t], ensure_ascii=False).encode("utf-8") + b"\n")
        return h.hexdigest()

    def words_summary(self) -> dict[str, float]:
        """Min / median / max words per chunk (0s when empty)."""
        if not self.texts:
            return {"min": 0, "median": 0, "max": 0}
        counts = np.array([word_count(t) for t in self.texts])
        return {"min": int(counts.min()), "median": float(np.median(counts)), "max": int(counts.max())}


def build_plan(records: Iterable[TextRecord], params: ChunkParams, min_chunks: int, source: str) -> ChunkPlan:
    """Group records into articles, chunk whole articles, drop articles under ``min_chunks`` chunks.

    Raises an :class:`InputError` when an article id repeats in whole-article input, a (article,
    chunk) pair repeats in pre-chunked input, or the two forms are mixed.
    """
    articles: dict[str | int, list[tuple[int, str]]] = {}
    mode: str | None = None
    for rec in records:
        this = "pre-chunked" if rec.chunk_index is not None else "chunked here"
        if mode is None:
            mode = this
        elif mode != this:
            raise InputError(f"{source} mixes whole articles and pre-chunked rows (`chunk_index` on some rows only); "
                             "use one form per file.")
        if this == "chunked here":
            if rec.article_id in articles:
                raise InputError(f"article {rec.article_id!r} appears twice in {source}; whole-article input needs "
                                 "one row per article (add `chunk_index` for pre-chunked rows).")
            articles[rec.article_id] = [(i, t) for i, t in enumerate(chunk_article(rec.text, params))]
        else:
            articles.setdefault(rec.article_id, []).append((int(rec.chunk_index), rec.text))
    if mode is None:
        raise InputError(f"{source} holds no text records; nothing to embed.")
    texts: list[str] = []
    ids: list[int] = []
    positions: list[int] = []
    names: list[str] = []
    keys: list[int] = []
    all_int = all(isinstance(a, int) for a in articles)
    dropped = dropped_chunks = 0
    for name, chunks in articles.items():
        chunks.sort(key=lambda ct: ct[0])
        if mode == "pre-chunked":
            _check_prechunked(name, chunks, source)
        if len(chunks) < min_chunks:
            dropped += 1
            dropped_chunks += len(chunks)
            continue
        aid = int(name) if all_int else string_key(str(name))
        keys.append(aid)
        names.append(str(name))
        for pos, text in chunks:
            texts.append(text)
            ids.append(aid)
            positions.append(pos)
    if not texts:
        raise InputError(f"every article of {source} has fewer than {min_chunks} chunks ({dropped} dropped); "
                         "lower --min-chunks or --chunk-words.")
    if len(set(keys)) != len(keys):  # ints repeated as int and str, or a 63-bit hash collision
        raise InputError(f"two article ids of {source} map to the same stored key; rename one of them.")
    return ChunkPlan(texts=texts, article_ids=np.asarray(ids, np.int64), chunk_index=np.asarray(positions, np.int64),
                     article_keys=np.asarray(keys, np.int64), article_names=names, mode=mode, n_input_articles=len(articles), n_dropped_articles=dropped,
                     n_dropped_chunks=dropped_chunks)


def _check_prechunked(name: str, chunks: list[tuple[int, str]], source: str) -> None:
    for (a, _), (b, _) in zip(chunks[:-1], chunks[1:]):
        if a == b:
            raise InputError(f"article {name!r} has chunk_index {a} twice in {source}; chunk order is ambiguous.")
    for pos, text in chunks:
        if not text.split():
            raise InputError(f"chunk {pos} of article {name!r} in {source} has no text; remove it or fill it.")

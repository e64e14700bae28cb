"""Write an embedded article store with its texts file and provenance; build the reversed control store.

Two store formats, chosen by the output's suffix, both read by :func:`lvmdiag.data.store.load_article_store`:

- ``.npz``: the python-docs store form (``vectors`` float32 (N, D), ``article_ids`` int64 stable
  article keys (see :mod:`lvmdiag.embed.plan`), ``chunk_index`` int64, ``article_keys`` int64 (A,)
  with ``article_names`` str (A,) naming each key, plus ``provenance``: the provenance record as
  UTF-8 JSON bytes).
- ``.parquet`` (``lvmdiag[parquet]``): one row per chunk, ``article_id`` / ``chunk_index`` /
  ``vector`` (``fixed_size_list<float32, D>``), written by
  :func:`lvmdiag.data.parquet_writer.write_article_store_parquet` in bounded row groups; the
  provenance JSON is the schema metadata ``lvmdiag.provenance``. ``article_id`` holds the original
  string ids when the stable keys are their hashes (the reader hashes them back to the same keys, and
  reports name the articles), else the int64 keys (a store whose names are neither, e.g. titles of
  integer ids, keeps its names only in the texts file's ``article`` field). Rows are sorted by
  (article key, chunk_index): the order every store reader builds windows in, so the columnar
  reader (which keeps file order, to stream) gives the same windows, row numbers and numbers as
  the ``.npz`` store, whose rows keep the input's article order.

Beside either: ``<stem>.texts.jsonl`` (one line per store row, in the store's row order, keys
``article_id``, ``chunk_index``, ``article``, ``text``) and ``<stem>.provenance.json``. Every file is
written atomically and deterministically (same arrays, same bytes).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from lvmdiag._atomic import atomic_path, write_text_atomic
from lvmdiag._hash import file_sha256
from lvmdiag.data.store import load_article_store, string_key
from lvmdiag.data.texts import StoreTexts, find_texts, texts_path_for
from lvmdiag.data.writers import write_npz
from lvmdiag.errors import InputError
from lvmdiag.results import Result


def provenance_path_for(store: str | os.PathLike[str]) -> Path:
    """``<stem>.provenance.json`` beside ``store``."""
    p = Path(store)
    stem = p.name[: -len(p.suffix)] if p.suffix else p.name
    return p.with_name(stem + ".provenance.json")


STORE_FORMATS = {".npz": "npz", ".parquet": "parquet"}
PROVENANCE_KEY = "lvmdiag.provenance"


def store_format(out: str | os.PathLike[str], what: str = "--out") -> str:
    """``"npz"`` or ``"parquet"`` from the suffix of a store path (any other suffix is an InputError)."""
    fmt = STORE_FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        raise InputError(f"{what} {out} must end in .npz or .parquet (the article store written).")
    if fmt == "parquet":
        from lvmdiag.data.parquet_writer import _pyarrow

        _pyarrow()  # "install lvmdiag[parquet]" before any work is done
    return fmt


def _parquet_ids(article_ids: np.ndarray, article_keys: np.ndarray, article_names: Sequence[str]) -> np.ndarray:
    """The ``article_id`` column: the names when they hash to the keys (string ids), else the int64 keys."""
    keys = np.asarray(article_keys, np.int64)
    names = [str(n) for n in article_names]
    ids = np.asarray(article_ids, np.int64)
    if all(n == str(k) for k, n in zip(keys.tolist(), names)):
        return ids
    if not all(string_key(n) == k for k, n in zip(keys.tolist(), names)):
        return ids
    order = np.argsort(keys, kind="stable")
    return np.asarray(names, dtype=str)[order[np.searchsorted(keys[order], ids)]]


def write_store(out: str | os.PathLike[str], vectors: np.ndarray, article_ids: np.ndarray, chunk_index: np.ndarray,
                article_keys: np.ndarray, article_names: Sequence[str], texts: Sequence[str | None] | None,
                provenance: dict[str, Any]) -> tuple[Path, Path | None, Path]:
    """Write the store (.npz or .parquet, by ``out``'s suffix), its texts file (when ``texts`` is given) and
    its provenance; returns the three paths. ``provenance`` gets ``store_format``."""
    target = Path(out)
    fmt = store_format(target)
    provenance = {**provenance, "store_format": fmt}
    order = None
    if fmt == "parquet":
        import pyarrow  # store_format checked it is there

        # the Parquet bytes depend on the writer's version too
        provenance["software"] = {**provenance.get("software", {}), "pyarrow": pyarrow.__version__}
        order = np.lexsort((np.asarray(chunk_index), np.asarray(article_ids)))
        if np.array_equal(order, np.arange(order.size)):
            order = None
    prov_json = json.dumps(provenance, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
    texts_path = None
    if texts is not None:
        texts_path = texts_path_for(target)
        name_of = {int(k): str(n) for k, n in zip(np.asarray(article_keys).tolist(), article_names)}
        lines = []
        rows = range(len(texts)) if order is None else order.tolist()
        a_list, c_list = np.asarray(article_ids).tolist(), np.asarray(chunk_index).tolist()
        for r in rows:
            a, c, t = a_list[r], c_list[r], texts[r]
            if t is not None:
                lines.append(json.dumps({"article_id": a, "chunk_index": c, "article": name_of[a], "text": t},
                                        ensure_ascii=False))
        write_text_atomic(texts_path, "\n".join(lines) + "\n")
    prov_path = provenance_path_for(target)
    write_text_atomic(prov_path, prov_json)
    if fmt == "parquet":
        from lvmdiag.data.parquet_writer import write_article_store_parquet

        write_article_store_parquet(target, vectors, _parquet_ids(article_ids, article_keys, article_names),
                                    np.asarray(chunk_index, np.int64), metadata={PROVENANCE_KEY: prov_json},
                                    row_order=order)
        return target, texts_path, prov_path
    arrays = {
        "vectors": vectors,
        "article_ids": np.asarray(article_ids, np.int64),
        "chunk_index": np.asarray(chunk_index, np.int64),
        "article_keys": np.asarray(article_keys, np.int64),
        "article_names": np.asarray(list(article_names), dtype=str),
        "provenance": np.frombuffer(prov_json.encode("utf-8"), dtype=np.uint8),
    }
    with atomic_path(target, suffix=".npz") as tmp:
        write_npz(tmp, arrays)
    return target, texts_path, prov_path


def _source_sha256(src: Path) -> str:
    """SHA-256 of a store file, or of a store directory's sorted (relative name, file SHA-256) list."""
    if src.is_file():
        return file_sha256(src)
    h = hashlib.sha256()
    for f in sorted((f for f in src.rglob("*") if f.is_file()), key=lambda f: f.relative_to(src).as_posix()):
        h.update(f.relative_to(src).as_posix().encode("utf-8") + b"\0" + file_sha256(f).encode("ascii") + b"\n")
    return h.hexdigest()


@dataclass(frozen=True)
class ReverseResult(Result):
    """Output of :func:`reverse_store`: the control store written and what it holds."""

    source: str
    store: str
    texts: str | None
    provenance: str
    n_articles: int
    n_chunks: int

    def to_markdown(self) -> str:
        extra = f", texts {self.texts}" if self.texts else " (no texts file beside the source)"
        return (f"Reversed-article control store {self.store}: {self.n_articles} articles, {self.n_chunks} chunks, "
                f"each article's chunk order reversed (from {self.source}){extra}.\n")


def reverse_store(source: str | os.PathLike[str], out: str | os.PathLike[str], *,
                  allow_pickle: bool = False,
                  progress: Callable[[int, int], None] | None = None) -> ReverseResult:
    """Write the reversed-article control store of ``source``: every article's chunks in reverse order.

    Parameters
    ----------
    source : an article store (any form :func:`load_article_store` reads)
    out : the control store to write (.npz: python-docs form, or .parquet), with the source's stable
        article keys and chunk_index 0..L-1 per article
    allow_pickle : passed to the reader (object arrays)
    progress : optional ``callback(done, total)`` over the 4 steps: read, reorder, hash the source, write

    Returns
    -------
    ReverseResult with ``source``, ``store``, ``texts`` (written when a texts file sits beside the
    source), ``provenance``, ``n_articles`` and ``n_chunks``.

    Chunk j of an article of L chunks becomes chunk L-1-j; vectors are copied unchanged, so the
    control store has the same chunks, windows of the same articles, and the opposite order.
    """
    src, dst = Path(source), Path(out)
    if dst.resolve() == src.resolve():
        raise InputError(f"output {out} is the input store; choose another path (inputs are never overwritten).")
    store_format(dst)
    step = progress if progress is not None else (lambda done, total: None)
    step(0, 4)
    store = load_article_store(src, allow_pickle=allow_pickle)
    step(1, 4)
    codes = store.article_ids
    pos = store.chunk_index if store.chunk_index is not None else np.arange(store.n_chunks)
    order = np.lexsort((pos, codes))  # rows by (article, chunk)
    sorted_codes = codes[order]
    starts = np.r_[0, np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1]
    ends = np.r_[starts[1:], sorted_codes.size]
    new_rows = np.concatenate([order[a:b][::-1] for a, b in zip(starts, ends)])
    new_chunk = np.concatenate([np.arange(b - a) for a, b in zip(starts, ends)]).astype(np.int64)
    texts = None
    tpath = find_texts(src)
    if tpath is not None:
        st = StoreTexts(src, tpath)
        texts = [st.row_text(int(r)) for r in new_rows]
    step(2, 4)
    provenance = {
        "format": "lvmdiag-reversed/1",
        "rule": "chunk j of an article of L chunks becomes chunk L-1-j; vectors unchanged",
        "reversed_from": {"name": src.name, "sha256": _source_sha256(src)},
        "counts": {"articles": store.n_articles, "chunks": store.n_chunks, "dim": store.d},
    }
    step(3, 4)
    vectors = np.asarray(store.vectors[new_rows], dtype=store.vectors.dtype)
    path, texts_path, prov = write_store(dst, vectors, store.article_keys[codes[new_rows]], new_chunk,
                                         store.article_keys, list(store.article_names), texts, provenance)
    step(4, 4)
    return ReverseResult(source=str(src), store=str(path), texts=None if texts_path is None else str(texts_path),
                         provenance=str(prov), n_articles=store.n_articles, n_chunks=store.n_chunks)

"""Streaming passes behind the leakage analyzer: exact chunk/window keys and the near-duplicate search.

Chunk identity is the data layer's exact-content row hash (:func:`lvmdiag.data.hashing.hash_rows`,
the same scheme article recovery uses) of each float32 chunk vector; a window's identity is the same
hash applied to its K+1 chunk keys. Zero and non-finite chunks get no identity: they never count as
shared (failed encoder batches are stored as zeros in many files).

Memory: O(windows x (K+1)) 64-bit keys per split, plus the de-duplicated *query* vectors (chunks of a
non-train split that are not exact copies of a train chunk); train vectors are streamed in blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from lvmdiag.data.hashing import hash_rows
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.stats.near_duplicates import BlockedNearest, normalize_rows
from lvmdiag.stats.vectors import usable


def _window_chunks(ctx: np.ndarray, tgt: np.ndarray) -> np.ndarray:
    """(B, K+1, D) float32: the K context chunks followed by the target."""
    return np.concatenate([ctx, tgt[:, None, :]], axis=1).astype(np.float32, copy=False)


def _null_mask(chunks: np.ndarray) -> np.ndarray:
    """(B, K+1) True where a chunk is all-zero or non-finite."""
    sq = np.einsum("bjd,bjd->bj", chunks, chunks, dtype=np.float64)
    return ~usable(sq)


@dataclass(frozen=True)
class SplitKeys:
    """Exact keys of one split.

    Attributes
    ----------
    chunk : (N, K+1) uint64 key of every chunk slot (meaningless where ``null``)
    null : (N, K+1) bool, zero or non-finite chunk
    window : (N,) uint64 key of each window (meaningless where ``window_null``)
    window_null : (N,) bool, every chunk of the window is null
    """

    chunk: np.ndarray
    null: np.ndarray
    window: np.ndarray
    window_null: np.ndarray

    def unique_chunks(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted distinct non-null chunk keys and the flat slot index (row*(K+1)+pos) of each first occurrence."""
        flat = self.chunk.ravel()
        slots = np.flatnonzero(~self.null.ravel())
        keys, first = np.unique(flat[slots], return_index=True)
        return keys, slots[first]


def hash_split(seq: SequenceSet, block_rows: int, tick: Callable[[int], None]) -> SplitKeys:
    """One pass over ``seq``: chunk keys, null mask and window keys."""
    n, k1 = seq.n, seq.k + 1
    chunk = np.empty((n, k1), dtype=np.uint64)
    null = np.empty((n, k1), dtype=bool)
    for start, ctx, tgt in seq.iter_blocks(block_rows):
        chunks = _window_chunks(ctx, tgt)
        b = chunks.shape[0]
        chunk[start : start + b] = hash_rows(chunks.reshape(b * k1, -1)).reshape(b, k1)
        null[start : start + b] = _null_mask(chunks)
        tick(b)
    # a null slot gets key 0 so two windows equal in every non-null chunk (and nulls at the same slots) match
    masked = np.where(null, np.uint64(0), chunk)
    window = hash_rows(masked) if n else np.empty(0, np.uint64)
    return SplitKeys(chunk, null, window, null.all(axis=1))


@dataclass(frozen=True)
class Queries:
    """De-duplicated chunks of one non-train split that have no exact copy in train.

    Attributes
    ----------
    keys : (m,) sorted distinct chunk keys
    slot : (m,) flat slot index (row*(K+1)+pos) of the first occurrence in the split
    vectors : (m, D) unit-norm float32 vectors
    """

    keys: np.ndarray
    slot: np.ndarray
    vectors: np.ndarray


def gather_queries(seq: SequenceSet, keys: SplitKeys, exclude: np.ndarray, block_rows: int) -> Queries:
    """Collect the first occurrence of every distinct non-null chunk of ``seq`` whose key is not in ``exclude``.

    Reads only the blocks that hold a selected first occurrence.
    """
    k1 = seq.k + 1
    uniq, first = keys.unique_chunks()
    keep = ~np.isin(uniq, exclude, assume_unique=True)
    uniq, first = uniq[keep], first[keep]
    vectors = np.empty((uniq.size, seq.d), dtype=np.float32)
    rows = first // k1
    order = np.argsort(first, kind="stable")
    for start in range(0, seq.n, block_rows):
        lo, hi = np.searchsorted(rows[order], [start, start + block_rows])
        if lo == hi:
            continue
        sel = order[lo:hi]
        stop = min(start + block_rows, seq.n)
        chunks = _window_chunks(np.asarray(seq.contexts[start:stop], np.float32),
                                np.asarray(seq.targets[start:stop], np.float32))
        vecs = chunks[rows[sel] - start, first[sel] % k1]
        vectors[sel] = normalize_rows(vecs)[0]
    return Queries(uniq, first, vectors)


def search_train(train: SequenceSet, train_keys: SplitKeys, first_slots: np.ndarray,
                 queries: list[Queries], block_rows: int, tile_elems: int,
                 tick: Callable[[int], None]) -> list[BlockedNearest]:
    """Second pass over train: every distinct non-null train chunk (its first occurrence) against each query set.

    Returns one :class:`BlockedNearest` per query set, whose ids are flat train slot indices.
    """
    k1 = train.k + 1
    states = [BlockedNearest(q.vectors, tile_elems) for q in queries]
    is_first = np.zeros(train.n * k1, dtype=bool)
    is_first[first_slots] = True
    is_first = is_first.reshape(train.n, k1)
    active = any(q.keys.size for q in queries)
    for start in range(0, train.n, block_rows):
        stop = min(start + block_rows, train.n)
        if not active:
            tick(stop - start)
            continue
        r, p = np.nonzero(is_first[start:stop])
        if r.size:
            chunks = _window_chunks(np.asarray(train.contexts[start:stop], np.float32),
                                    np.asarray(train.targets[start:stop], np.float32))
            vecs, ok = normalize_rows(chunks[r, p])
            ids = (start + r) * k1 + p
            for st in states:
                st.update(vecs[ok], ids[ok])
        tick(stop - start)
    return states

"""The unit of streaming work: a block of windows of one split, and the part of the input it comes from."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterator, Protocol

import numpy as np


class RowSource(Protocol):
    """Anything with ``n`` rows that yields ``(start, contexts, targets)`` float32 blocks (a SequenceSet)."""

    @property
    def n(self) -> int: ...

    def iter_blocks(self, block_rows: int = 8192) -> Iterator[tuple[int, np.ndarray, np.ndarray]]: ...


@dataclass(frozen=True)
class Block:
    """Windows ``[start, start + B)`` of one split, read once and handed to every analyzer.

    Attributes
    ----------
    split : split name ("train", "val", ...)
    start : row offset of the first window within the whole split (over all its shards)
    contexts : (B, K, D) float32
    targets : (B, D) float32
    labels : (B,) int64 article codes, dense and shared by every split and shard of the run
    valid : (B,) bool rows usable according to the load-time validation, or None (all usable)
    """

    split: str
    start: int
    contexts: np.ndarray
    targets: np.ndarray
    labels: np.ndarray
    valid: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.contexts.shape[0])

    @property
    def stop(self) -> int:
        return self.start + self.n

    @cached_property
    def chunks(self) -> np.ndarray:
        """(B, K+1, D) float32: the K context chunks followed by the target."""
        from lvmdiag.analyzers.leakage_index import _window_chunks

        return _window_chunks(self.contexts, self.targets)

    @cached_property
    def chunk_keys(self) -> np.ndarray:
        """(B, K+1) uint64 exact-content key of every chunk, computed once and shared by every analyzer."""
        from lvmdiag.data.hashing import hash_rows

        b, k1, d = self.chunks.shape
        return hash_rows(self.chunks.reshape(b * k1, d)).reshape(b, k1)


@dataclass(frozen=True)
class Part:
    """A contiguous run of one split's rows that one task reads (a whole file, or one shard of a split).

    Attributes
    ----------
    split : split name
    start : offset of the part's first row within the split
    source : the rows (a SequenceSet or any :class:`RowSource`; must pickle for Dask)
    labels : (n,) int64 article codes of the part's rows
    valid : (n,) bool load-time validation mask, or None
    """

    split: str
    start: int
    source: Any
    labels: np.ndarray
    valid: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.source.n)

    def blocks(self, block_rows: int) -> Iterator[Block]:
        """The part's blocks in row order (the only place a runner reads vectors)."""
        for s, ctx, tgt in self.source.iter_blocks(block_rows):
            e = s + ctx.shape[0]
            yield Block(self.split, self.start + s, ctx, tgt, self.labels[s:e],
                        None if self.valid is None else self.valid[s:e])

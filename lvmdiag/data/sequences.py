"""The in-memory (or memory-mapped) form of a sequence file that every analyzer consumes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterator, Literal

import numpy as np

IdSource = Literal["given", "recovered", "none"]


@dataclass(frozen=True)
class SequenceSet:
    """Windows of K context vectors and the next-chunk target, from one file (one split).

    Attributes
    ----------
    contexts : (N, K, D) float array, possibly a ``np.memmap`` (never copied whole by analyzers)
    targets : (N, D) float array
    article_ids : (N,) int64 article label per window, or None when unknown. Labels are dense
        codes local to this object unless ``id_source == "recovered"`` across files, in which case
        the same code means the same article in every file of that recovery.
    id_source : "given" (read from the file), "recovered" (linked by shared chunk vectors) or "none"
    source : the path it was read from (for messages)
    split : the split name ("train", "val", "ood", ...) or None
    fmt : the on-disk form it was read from ("arxiv", "wikipedia", "rebuilt", "two_split",
        "npy_dir", "article_store", "synthetic"), so writers can write the same form back
    extras : per-window arrays carried along unchanged (e.g. ``metadata``, ``context_texts``,
        ``target_indices``), each with N rows, so a resplit can subset them
    attrs : file-level values (scalar keys, manifest, key names used) for provenance
    valid : (N,) bool mask of rows usable for analysis (False for zero-norm / non-finite rows), or
        None when every row is valid
    """

    contexts: np.ndarray
    targets: np.ndarray
    article_ids: np.ndarray | None = None
    id_source: IdSource = "none"
    source: str = "<memory>"
    split: str | None = None
    fmt: str = "arxiv"
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    valid: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.contexts.shape[0])

    @property
    def k(self) -> int:
        return int(self.contexts.shape[1])

    @property
    def d(self) -> int:
        return int(self.contexts.shape[2])

    @property
    def name(self) -> str:
        return self.split or self.source

    def with_ids(self, article_ids: np.ndarray, id_source: IdSource) -> "SequenceSet":
        """A copy carrying new article labels (e.g. recovered ones)."""
        return replace(self, article_ids=np.asarray(article_ids, dtype=np.int64), id_source=id_source)

    def iter_blocks(self, block_rows: int = 8192) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Yield ``(start, contexts_block, targets_block)`` as float32 arrays of at most ``block_rows`` rows.

        Blocks are read from the (possibly memory-mapped) arrays one at a time, so memory stays
        bounded by the block size whatever N is.
        """
        for start in range(0, self.n, block_rows):
            stop = min(start + block_rows, self.n)
            yield (
                start,
                np.asarray(self.contexts[start:stop], dtype=np.float32),
                np.asarray(self.targets[start:stop], dtype=np.float32),
            )

    def subset(self, rows: np.ndarray) -> "SequenceSet":
        """A new SequenceSet holding only ``rows`` (indices or bool mask), extras included (copies data)."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        return replace(
            self,
            contexts=np.asarray(self.contexts[rows]),
            targets=np.asarray(self.targets[rows]),
            article_ids=None if self.article_ids is None else np.asarray(self.article_ids)[rows],
            extras={k: np.asarray(v)[rows] for k, v in self.extras.items()},
            valid=None if self.valid is None else np.asarray(self.valid)[rows],
        )

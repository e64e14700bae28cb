"""Approximate nearest-neighbour cosine search (faiss IVF, the ``lvmdiag[ann]`` extra), mergeable like BlockedNearest.

The exact :class:`~lvmdiag.stats.near_duplicates.BlockedNearest` costs O(queries x references x D).
:class:`IVFNearest` keeps the reference vectors in a faiss ``IndexIVFFlat`` (inner product on unit
vectors = cosine) whose coarse quantizer is trained on the *queries* before any reference arrives,
so every shard's index shares one quantizer and partial indexes merge exactly (``merge_from``).
:meth:`result` searches each query in ``nprobe`` of ``nlist`` cells; a near-duplicate (cos >= 0.98)
lies very close to its query, so it is almost always in the query's own cell. Recall is not assumed:
:meth:`recall` re-searches a random sample of queries exhaustively (every cell: the exact answer,
computed from the same stored vectors) and reports the share of exact near-duplicate pairs found.

Memory: the index stores every reference vector (N x D float32) plus its id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.errors import InputError

#: above this many (query x reference) products the approximate search is chosen when faiss is installed
ANN_MIN_PAIRS = 2 * 10**10
#: queries re-searched exhaustively to measure recall
RECALL_SAMPLE = 2000


def faiss_or_none():
    """The faiss module, or None when the ``ann`` extra is not installed."""
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def require_faiss():
    faiss = faiss_or_none()
    if faiss is None:
        raise InputError("the approximate near-duplicate search needs faiss: install lvmdiag[ann].")
    return faiss


def choose_search(n_queries: int, n_refs: int, method: str = "auto") -> str:
    """"exact" or "ann": ann when asked, or on "auto" above :data:`ANN_MIN_PAIRS` products with faiss installed."""
    if method not in ("auto", "exact", "ann"):
        raise InputError(f"near-duplicate search must be auto, exact or ann; got {method!r}.")
    if method == "ann":
        require_faiss()
        return "ann"
    if method == "exact":
        return "exact"
    return "ann" if n_queries * n_refs > ANN_MIN_PAIRS and faiss_or_none() is not None and n_queries >= 1000 else "exact"


@dataclass(frozen=True)
class Recall:
    """Measured recall of the approximate search on a random sample of queries."""

    n_sampled: int
    n_pairs: int  # sampled queries whose exact nearest reference reaches the threshold
    n_found: int  # of those, found at or above the threshold by the approximate search
    top1: float  # share of sampled queries whose approximate nearest is the exact nearest's cosine

    @property
    def value(self) -> float:
        return self.n_found / self.n_pairs if self.n_pairs else float("nan")


class IVFNearest:
    """Running nearest reference (cosine, id) of each query, with references in a faiss IVF index.

    Parameters
    ----------
    queries : (m, D) unit-norm float32
    nlist : coarse cells (default ~ 4 sqrt(m), at most m / 39 so k-means has enough points per cell)
    nprobe : cells searched per query
    """

    def __init__(self, queries: np.ndarray, nlist: int | None = None, nprobe: int = 16, seed: int = 0) -> None:
        faiss = require_faiss()
        self.queries = np.ascontiguousarray(queries, dtype=np.float32)
        m, d = self.queries.shape
        if nlist is None:
            nlist = int(min(max(1, 4 * np.sqrt(max(m, 1))), max(1, m // 39)))
        self.nlist, self.nprobe = int(max(1, nlist)), int(max(1, min(nprobe, nlist)))
        quantizer = faiss.IndexFlatIP(d)
        self.index = faiss.IndexIVFFlat(quantizer, d, self.nlist, faiss.METRIC_INNER_PRODUCT)
        if m:
            self.index.cp.seed = seed
            self.index.train(self.queries if m >= self.nlist else np.repeat(self.queries, self.nlist, 0))

    @property
    def n_refs(self) -> int:
        return int(self.index.ntotal)

    def update(self, refs: np.ndarray, ref_ids: np.ndarray) -> None:
        """Add unit-norm reference vectors (r, D) with int64 ids."""
        if refs.shape[0] and self.index.is_trained:
            self.index.add_with_ids(np.ascontiguousarray(refs, np.float32), np.asarray(ref_ids, np.int64))

    def merge(self, other: "IVFNearest") -> "IVFNearest":
        """Add ``other``'s references (same quantizer: both were planned from the same queries)."""
        if other.n_refs:
            self.index.merge_from(other.index, 0)
        return self

    def _search(self, q: np.ndarray, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        if self.n_refs == 0 or q.shape[0] == 0:
            return np.full(q.shape[0], np.nan), np.full(q.shape[0], -1, np.int64)
        self.index.nprobe = int(nprobe)
        dist, ids = self.index.search(np.ascontiguousarray(q, np.float32), 1)
        cos = np.clip(dist[:, 0].astype(np.float64), -1.0, 1.0)
        cos[ids[:, 0] < 0] = np.nan
        return cos, ids[:, 0].astype(np.int64)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(approximate best cosine, best reference id) per query; NaN / -1 where nothing was found."""
        return self._search(self.queries, self.nprobe)

    def recall(self, threshold: float, rng: np.random.Generator | int | None = 0,
               sample: int = RECALL_SAMPLE, approx: tuple[np.ndarray, np.ndarray] | None = None) -> Recall:
        """Recall of near-duplicate pairs (exact cos >= threshold) on a random sample of queries."""
        m = self.queries.shape[0]
        if m == 0 or self.n_refs == 0:
            return Recall(0, 0, 0, float("nan"))
        pick = np.sort(np.random.default_rng(rng).choice(m, size=min(sample, m), replace=False))
        a_cos = (approx if approx is not None else self.result())[0][pick]
        e_cos, _ = self._search(self.queries[pick], self.nlist)  # every cell: exact
        pairs = e_cos >= threshold
        found = pairs & (a_cos >= threshold)
        top1 = float(np.mean(np.abs(a_cos - e_cos) <= 1e-6))
        return Recall(int(pick.size), int(pairs.sum()), int(found.sum()), top1)

    def __getstate__(self) -> dict:
        faiss = require_faiss()
        return {**{k: v for k, v in self.__dict__.items() if k != "index"},
                "index_bytes": faiss.serialize_index(self.index)}

    def __setstate__(self, state: dict) -> None:
        faiss = require_faiss()
        raw = state.pop("index_bytes")
        self.__dict__.update(state)
        self.index = faiss.deserialize_index(raw)

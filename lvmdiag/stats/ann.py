"""Approximate nearest-neighbour cosine search: an inverted file over the queries, scored with BLAS.

The exact :class:`~lvmdiag.stats.near_duplicates.BlockedNearest` costs O(queries x references x D).
:class:`IVFNearest` partitions the sphere into ``nlist`` cells with k-means on the *queries* (faiss's
``Kmeans``, the ``lvmdiag[ann]`` extra); each query is listed in its ``nprobe`` nearest cells. A
streamed reference goes to its nearest cell and is compared, by one matrix product per cell, only
with the queries listed there: about nprobe / nlist of the exact work, at BLAS speed (faiss's own IVF
scan is not BLAS-bound on the query side, and measured slower here). The state is a running best per
query, like BlockedNearest, so partial states over reference shards merge exactly (max), nothing is
stored per reference, and memory is O(queries x D) plus a bounded buffer of references.

A near-duplicate (cos >= 0.98) lies very close to its query, so it almost always shares a cell.
Recall is measured, not assumed: a random sample of queries is also searched exactly (a
BlockedNearest over the same stream, ~sample/queries of the exact cost) and :meth:`recall` reports
the share of the sample's exact near-duplicate pairs that the approximate search found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.errors import InputError

#: above this many (query x reference) products the approximate search is chosen when faiss is installed
#: (measured in benchmarks/README.md: 1.8x faster at 10^9 products, 4.4x at 2.5 x 10^9, recall 1.0 both)
ANN_MIN_PAIRS = 10**9
#: rows per (rows x cells) product when assigning cells: bounds that matrix to ~8192 x nlist floats
_ROWS_PER_PRODUCT = 8192
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
    """Running approximate nearest reference (cosine, id) of each query; see the module docstring.

    Parameters
    ----------
    queries : (m, D) unit-norm float32
    nlist : cells (default ~ 4 sqrt(m), at most m / 39 so k-means has enough points per cell)
    nprobe : cells each query is listed in
    sample : queries also searched exactly, for the recall
    buffer_rows : references buffered before one scoring round (bigger = larger, faster products)
    """

    def __init__(self, queries: np.ndarray, nlist: int | None = None, nprobe: int = 16, seed: int = 0,
                 sample: int = RECALL_SAMPLE, buffer_rows: int = 65536) -> None:
        from lvmdiag.stats.near_duplicates import BlockedNearest

        faiss = require_faiss()
        self.queries = np.ascontiguousarray(queries, dtype=np.float32)
        m, d = self.queries.shape
        if nlist is None:
            nlist = int(min(max(1, 4 * np.sqrt(max(m, 1))), max(1, m // 39)))
        self.nlist, self.nprobe = int(max(1, nlist)), int(max(1, min(nprobe, nlist)))
        self.buffer_rows = max(1, int(buffer_rows))
        self.best_cos = np.full(m, -np.inf, dtype=np.float32)
        self.best_id = np.full(m, -1, dtype=np.int64)
        rng = np.random.default_rng(seed)
        self.sample_idx = np.sort(rng.choice(m, size=min(sample, m), replace=False)) if m else np.zeros(0, np.int64)
        self.exact_sample = BlockedNearest(self.queries[self.sample_idx])
        self._buf: tuple[np.ndarray, np.ndarray] | None = None  # (refs, ids), allocated on the first update
        self._n_buf = 0
        if m == 0:
            self.centroids = np.zeros((1, d), np.float32)
            self.cell_queries = [np.zeros(0, np.int64)]
            return
        # 10 Lloyd iterations on at most 16 points per cell: the cells only need to be reasonable (recall is
        # measured), and training, O(m^1.5 D), must stay a small fraction of the search it saves
        km = faiss.Kmeans(d, self.nlist, niter=10, seed=seed, spherical=True, verbose=False,
                          max_points_per_centroid=16, min_points_per_centroid=1)
        km.train(self.queries if m >= self.nlist else np.repeat(self.queries, self.nlist, 0))
        self.centroids = np.ascontiguousarray(km.centroids, dtype=np.float32)
        probe = np.empty((m, self.nprobe), dtype=np.int64)  # each query's nprobe nearest cells
        for s in range(0, m, _ROWS_PER_PRODUCT):  # in slices: the full (m, nlist) products would be O(m^1.5)
            sim = self.queries[s : s + _ROWS_PER_PRODUCT] @ self.centroids.T
            probe[s : s + _ROWS_PER_PRODUCT] = (np.argpartition(-sim, self.nprobe - 1, axis=1)[:, : self.nprobe]
                                                if self.nprobe < self.nlist else np.arange(self.nlist))
        flat_cells = probe.ravel()
        order = np.argsort(flat_cells, kind="stable")
        bounds = np.searchsorted(flat_cells[order], np.arange(self.nlist + 1))
        qidx = np.repeat(np.arange(m), self.nprobe)[order]
        self.cell_queries = [qidx[bounds[c] : bounds[c + 1]] for c in range(self.nlist)]

    def update(self, refs: np.ndarray, ref_ids: np.ndarray) -> None:
        """Fold in unit-norm references (r, D) with int64 ids (buffered; scored in rounds)."""
        if refs.shape[0] == 0 or self.queries.shape[0] == 0:
            return
        refs = np.asarray(refs, dtype=np.float32)
        ref_ids = np.asarray(ref_ids, dtype=np.int64)
        self.exact_sample.update(refs, ref_ids)
        if self._buf is None:  # one preallocated buffer: no copy per block and no concatenated copy per round
            self._buf = (np.empty((self.buffer_rows, refs.shape[1]), np.float32), np.empty(self.buffer_rows, np.int64))
        done = 0
        while done < refs.shape[0]:
            take = min(self.buffer_rows - self._n_buf, refs.shape[0] - done)
            self._buf[0][self._n_buf : self._n_buf + take] = refs[done : done + take]
            self._buf[1][self._n_buf : self._n_buf + take] = ref_ids[done : done + take]
            self._n_buf += take
            done += take
            if self._n_buf == self.buffer_rows:
                self._score()

    def flush(self) -> None:
        """Score the buffered references, then free the buffer (the pass is over, or the state is shipped)."""
        self._score()
        self._buf = None

    def _score(self) -> None:
        """Score the buffered references against the queries of their cells; the buffer is then empty."""
        if not self._n_buf:
            return
        refs, ids = self._buf[0][: self._n_buf], self._buf[1][: self._n_buf]
        self._n_buf = 0
        cell = np.concatenate([np.argmax(refs[s : s + _ROWS_PER_PRODUCT] @ self.centroids.T, axis=1)
                               for s in range(0, refs.shape[0], _ROWS_PER_PRODUCT)])
        order = np.argsort(cell, kind="stable")
        bounds = np.searchsorted(cell[order], np.arange(self.nlist + 1))
        for c in range(self.nlist):
            rows = order[bounds[c] : bounds[c + 1]]
            qs = self.cell_queries[c]
            if rows.size == 0 or qs.size == 0:
                continue
            sim = self.queries[qs] @ refs[rows].T  # (q_c, r_c): one BLAS product per cell
            arg = np.argmax(sim, axis=1)
            val = sim[np.arange(qs.size), arg]
            cand = ids[rows][arg]
            cur, cur_id = self.best_cos[qs], self.best_id[qs]
            better = (val > cur) | ((val == cur) & (cand < cur_id))
            self.best_cos[qs[better]] = val[better]
            self.best_id[qs[better]] = cand[better]

    def merge(self, other: "IVFNearest") -> "IVFNearest":
        """Combine with the state of another reference shard (same plan): elementwise max."""
        self.flush()
        other.flush()
        better = (other.best_cos > self.best_cos) | ((other.best_cos == self.best_cos) & (other.best_id >= 0)
                                                     & ((self.best_id < 0) | (other.best_id < self.best_id)))
        self.best_cos[better], self.best_id[better] = other.best_cos[better], other.best_id[better]
        self.exact_sample.merge(other.exact_sample)
        return self

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(approximate best cosine, best reference id) per query; NaN / -1 where nothing was found."""
        self.flush()
        cos = np.clip(self.best_cos.astype(np.float64), -1.0, 1.0)
        cos[~np.isfinite(self.best_cos)] = np.nan
        return cos, self.best_id.copy()

    def recall(self, threshold: float, approx: tuple[np.ndarray, np.ndarray] | None = None) -> Recall:
        """Recall of near-duplicate pairs (exact cos >= threshold) on the exactly searched sample of queries."""
        a_cos = (approx if approx is not None else self.result())[0][self.sample_idx]
        e_cos, _ = self.exact_sample.result()
        pairs = e_cos >= threshold
        found = pairs & (a_cos >= threshold)
        top1 = float(np.mean(np.abs(a_cos - e_cos) <= 1e-6)) if e_cos.size else float("nan")
        return Recall(int(e_cos.size), int(pairs.sum()), int(found.sum()), top1)

    def fresh(self) -> "IVFNearest":
        """An empty state with the same plan (queries, cells, sample), sharing its arrays."""
        from lvmdiag.stats.near_duplicates import BlockedNearest

        out = object.__new__(IVFNearest)
        out.__dict__.update(self.__dict__)
        out.best_cos = np.full_like(self.best_cos, -np.inf)
        out.best_id = np.full_like(self.best_id, -1)
        out.exact_sample = BlockedNearest(self.queries[self.sample_idx])
        out._buf, out._n_buf = None, 0
        return out

    def light(self) -> "IVFNearest":
        """The scored state without the plan's queries and cells (what a worker sends back to merge)."""
        self.flush()
        out = object.__new__(IVFNearest)
        out.__dict__.update(self.__dict__, queries=self.queries[:0], cell_queries=None)
        es = object.__new__(type(self.exact_sample))
        es.__dict__.update(self.exact_sample.__dict__, queries=self.exact_sample.queries[:0])
        out.exact_sample = es
        return out

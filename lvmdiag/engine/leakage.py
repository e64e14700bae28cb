"""Engine analyzer for leakage: chunk/window keys and the near-duplicate search in the same single read.

The one-shot analyzer reads train twice (keys, then the search) and re-reads the other splits' query
rows. Here the other splits are read first (phase 0): their states keep chunk keys and the unit vector
of every distinct chunk. ``prepare`` turns those into the query sets, and the train parts (phase 1)
hash their chunks and search each distinct train chunk against every query in the same read. Queries
that turn out to be exact copies of a train chunk are dropped in finalize, which leaves exactly the
one-shot analyzer's queries and nearest-train cosines (float32 products; ids equal unless two train
chunks tie to the last bit).

State sizes: keys O(N x (K+1)) x 9 bytes per split; the distinct chunk vectors of the non-train
splits (O(distinct val chunks x D) float32, as the one-shot query set); per train part the set of
chunk keys already searched (Python ints, ~70 bytes per distinct chunk) and one running best per query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from lvmdiag.engine.block import Block, Part


@dataclass
class KeyParts:
    """Chunk keys and null masks of some blocks, with their row offsets."""

    blocks: list = field(default_factory=list)  # (start, chunk (B, K+1) uint64, null (B, K+1) bool)

    def add(self, block: Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from lvmdiag.analyzers.leakage_index import _null_mask

        chunks, keys = block.chunks, block.chunk_keys  # shared with the validation state
        null = _null_mask(chunks)
        self.blocks.append((block.start, keys, null))
        return chunks, keys, null

    def split_keys(self) -> Any:
        """The SplitKeys of the rows seen, in row order (as :func:`hash_split` builds them)."""
        from lvmdiag.analyzers.leakage_index import SplitKeys
        from lvmdiag.data.hashing import hash_rows

        ordered = sorted(self.blocks, key=lambda b: b[0])
        chunk = np.concatenate([b[1] for b in ordered]) if ordered else np.zeros((0, 1), np.uint64)
        null = np.concatenate([b[2] for b in ordered]) if ordered else np.zeros((0, 1), bool)
        masked = np.where(null, np.uint64(0), chunk)
        window = hash_rows(masked) if chunk.shape[0] else np.empty(0, np.uint64)
        return SplitKeys(chunk, null, window, null.all(axis=1))


@dataclass
class QuerySideState:
    """Phase 0 (a non-train split): keys, plus the first occurrence and unit vector of every distinct chunk."""

    keys: KeyParts = field(default_factory=KeyParts)
    chunk_keys: list = field(default_factory=list)
    chunk_slots: list = field(default_factory=list)
    chunk_vecs: list = field(default_factory=list)

    def update(self, block: Block) -> None:
        from lvmdiag.stats.near_duplicates import normalize_rows

        chunks, keys, null = self.keys.add(block)
        k1 = keys.shape[1]
        slots = np.flatnonzero(~null.ravel())
        uniq, first = np.unique(keys.ravel()[slots], return_index=True)
        flat = slots[first]
        self.chunk_keys.append(uniq)
        self.chunk_slots.append(block.start * k1 + flat)
        self.chunk_vecs.append(normalize_rows(chunks.reshape(-1, chunks.shape[2])[flat])[0])
        if len(self.chunk_keys) > 8:  # bounded lists without re-sorting everything each block
            self._compact()

    def _compact(self) -> None:
        """Keep one entry per key (the smallest slot = first occurrence)."""
        if len(self.chunk_keys) <= 1:
            return
        keys, slots = np.concatenate(self.chunk_keys), np.concatenate(self.chunk_slots)
        order = np.lexsort((slots, keys))
        first = order[np.r_[True, keys[order][1:] != keys[order][:-1]]]  # sorted by key, first slot each
        # gather the kept vectors piece by piece: no concatenated copy of every piece's vectors
        sizes = np.array([v.shape[0] for v in self.chunk_vecs])
        piece = np.repeat(np.arange(sizes.size), sizes)[first]
        local = first - np.r_[0, np.cumsum(sizes)[:-1]][piece]
        vecs = np.empty((first.size, self.chunk_vecs[0].shape[1]), dtype=self.chunk_vecs[0].dtype)
        for i, v in enumerate(self.chunk_vecs):
            m = piece == i
            vecs[m] = v[local[m]]
        self.chunk_keys, self.chunk_slots, self.chunk_vecs = [keys[first]], [slots[first]], [vecs]

    def merge(self, other: "QuerySideState") -> "QuerySideState":
        self.keys.blocks.extend(other.keys.blocks)
        self.chunk_keys += other.chunk_keys
        self.chunk_slots += other.chunk_slots
        self.chunk_vecs += other.chunk_vecs
        self._compact()
        return self

    def queries(self, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(sorted distinct keys, first slot, unit vectors)."""
        self._compact()
        if not self.chunk_keys:
            return np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros((0, d), np.float32)
        return self.chunk_keys[0], self.chunk_slots[0], self.chunk_vecs[0]


@dataclass
class TrainSideState:
    """Phase 1 (train): keys, and the running nearest train chunk of every query of every other split."""

    nearest: list  # one BlockedNearest (exact) or IVFNearest (approximate) per other split
    active: bool = True  # False when no split has a query: nothing to search
    keys: KeyParts = field(default_factory=KeyParts)
    seen: set = field(default_factory=set)

    def update(self, block: Block) -> None:
        from lvmdiag.stats.near_duplicates import normalize_rows

        chunks, keys, null = self.keys.add(block)
        k1 = keys.shape[1]
        slots = np.flatnonzero(~null.ravel())
        uniq, first = np.unique(keys.ravel()[slots], return_index=True)
        fresh = np.fromiter((int(x) not in self.seen for x in uniq.tolist()), bool, uniq.size)
        self.seen.update(uniq[fresh].tolist())
        flat = np.sort(slots[first[fresh]])  # row-major, as the one-shot search visits them
        if flat.size == 0 or not self.active:
            return
        vecs, ok = normalize_rows(chunks.reshape(-1, chunks.shape[2])[flat])
        ids = block.start * k1 + flat
        for nb in self.nearest:
            nb.update(vecs[ok], ids[ok])

    def __getstate__(self) -> dict:
        """Ship the running bests only: the queries are the client's, ``seen`` matters only while updating."""
        light = []
        for nb in self.nearest:
            if hasattr(nb, "light"):  # approximate search: scored bests and the exact sample's bests
                light.append(nb.light())
                continue
            c = object.__new__(type(nb))
            c.__dict__.update(nb.__dict__, queries=np.zeros((0, nb.queries.shape[1]), np.float32))
            light.append(c)
        return {"nearest": light, "active": self.active, "keys": self.keys, "seen": set()}

    def merge(self, other: "TrainSideState") -> "TrainSideState":
        self.keys.blocks.extend(other.keys.blocks)
        self.seen |= other.seen
        for a, b in zip(self.nearest, other.nearest):
            if hasattr(a, "light"):  # approximate search: its own merge (max, and the exact sample's max)
                a.merge(b)
                continue
            # max cosine; on an exact tie the earlier train slot, as one pass in row order keeps
            better = (b.best_cos > a.best_cos) | ((b.best_cos == a.best_cos) & (b.best_id >= 0)
                                                  & ((a.best_id < 0) | (b.best_id < a.best_id)))
            a.best_cos[better], a.best_id[better] = b.best_cos[better], b.best_id[better]
        return self


@dataclass
class LeakageAnalyzer:
    """Plan of :func:`lvmdiag.analyzers.leakage.analyze_leakage` (train is read in phase 1)."""

    names: list[str]
    reference: str
    d: int
    groups: Any
    threshold: float = 0.98
    max_examples: int = 10
    tile_elems: int = 1 << 23
    n_reference: int = 0  # train windows, to choose the search
    search: str = "auto"  # "exact", "ann" or "auto" (see lvmdiag.stats.ann.choose_search)
    query_sets: dict | None = None  # split -> (keys, slots, vectors), set by prepare
    methods: dict | None = None  # split -> "exact" | "ann", set by prepare
    templates: dict | None = None  # split -> trained, empty IVFNearest (one quantizer for every train part)
    name: str = "leakage"

    def phase(self, split: str) -> int:
        return 1 if split == self.reference else 0

    def new_state(self, part: Part) -> Any:
        if part.split != self.reference:
            return QuerySideState()
        if self.query_sets is None:
            raise RuntimeError("leakage: train parts need the prepared query sets (runner bug).")
        from lvmdiag.stats.near_duplicates import BlockedNearest

        others = [n for n in self.names if n != self.reference]
        return TrainSideState([self.templates[n].fresh() if self.methods[n] == "ann"
                               else BlockedNearest(self.query_sets[n][2], self.tile_elems) for n in others],
                              active=any(self.query_sets[n][0].size for n in others))

    def prepare(self, states: Mapping[str, Any]) -> "LeakageAnalyzer":
        from dataclasses import replace

        empty = QuerySideState()
        from lvmdiag.stats.ann import choose_search

        qs = {n: (states.get(n) or empty).queries(self.d) for n in self.names if n != self.reference}
        from lvmdiag.stats.ann import IVFNearest

        methods = {n: choose_search(q[0].size, self.n_reference, self.search) for n, q in qs.items()}
        templates = {n: IVFNearest(qs[n][2]) for n, m in methods.items() if m == "ann"}  # k-means once, here
        return replace(self, query_sets=qs, methods=methods, templates=templates)

    def finalize(self, states: Mapping[str, Any], sources: Mapping[str, Any]) -> Any:
        from lvmdiag.analyzers.leakage import LeakageResult, _article_overlap, _split_report

        ref = self.reference
        others = [n for n in self.names if n != ref]
        labels, method, note = _article_overlap(self.groups, self.names)
        train_keys = states[ref].keys.split_keys()
        train_uniq, train_first = train_keys.unique_chunks()
        live_w = ~train_keys.window_null
        win_uniq, win_idx = np.unique(train_keys.window[live_w], return_index=True)
        win_first = np.flatnonzero(live_w)[win_idx]
        out, notes = [], []
        for i, n in enumerate(others):
            keys = states[n].keys.split_keys()
            qk, qslot, qvec = self.query_sets[n]
            nb = states[ref].nearest[i]
            if self.methods[n] == "ann":
                cos, ids = nb.result()
                rec = nb.recall(self.threshold, approx=(cos, ids))
                notes.append(f"{n}: approximate search (inverted file on faiss k-means cells, {nb.nprobe} of {nb.nlist} cells per query); "
                             f"recall measured against the exact search on {rec.n_sampled} random queries: "
                             f"{rec.n_found} of {rec.n_pairs} pairs with cos ≥ {self.threshold} found"
                             + (f" ({rec.value:.4f})" if rec.n_pairs else "") + ".")
            else:
                cos, ids = nb.result()
            keep = ~np.isin(qk, train_uniq, assume_unique=True)  # exact copies are shared chunks, not queries
            out.append(_split_report(n, sources[n], keys, train_keys, train_uniq, train_first, win_uniq, win_first,
                                     qk[keep], qslot[keep], cos[keep], ids[keep], labels, ref, self.threshold,
                                     self.max_examples))
        return LeakageResult(reference=ref, n_reference_windows=int(train_keys.chunk.shape[0]),
                             n_reference_chunks=int(train_uniq.size), threshold=float(self.threshold),
                             group_method=method, group_note=note, splits=tuple(out),
                             search="ann" if notes else "exact", search_note=" ".join(notes))

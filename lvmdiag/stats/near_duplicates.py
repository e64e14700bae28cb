"""Nearest-neighbour cosine search by blocked matrix products, in bounded memory.

Every query vector keeps a running maximum cosine and the id of the reference vector that attains
it. Reference vectors arrive in blocks (streamed from disk); each block is multiplied against the
queries tile by tile, so the largest temporary is ``tile_elems`` floats whatever the numbers of
queries and references: the full (queries x references) matrix is never built. The state is a
max-reduction, so partial states over disjoint reference shards merge exactly (:meth:`merge`).

Vectors are L2-normalised in float32 (zero and non-finite vectors must be removed by the caller);
float32 products of unit vectors are accurate to ~1e-6, far below any near-duplicate threshold gap.
"""

from __future__ import annotations

import numpy as np

from lvmdiag.stats.vectors import usable


def normalize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm float32 copies of the rows of ``x`` and a mask of usable rows (non-zero, finite)."""
    x = np.asarray(x, dtype=np.float32)
    sq = np.einsum("nd,nd->n", x, x, dtype=np.float64)
    ok = usable(sq)
    inv = np.zeros_like(sq)
    np.divide(1.0, np.sqrt(sq, where=ok, out=np.ones_like(sq)), out=inv, where=ok)
    out = (np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0) * inv[:, None].astype(np.float32)).astype(np.float32)
    return out, ok


class BlockedNearest:
    """Running best cosine of each query against reference blocks.

    Parameters
    ----------
    queries : (m, D) unit-norm float32 query vectors
    tile_elems : largest similarity tile (queries x references) computed at once, in elements

    Attributes
    ----------
    best_cos : (m,) float32 best cosine so far (-inf before any reference)
    best_id : (m,) int64 caller-supplied id of the best reference (-1 before any reference)
    """

    def __init__(self, queries: np.ndarray, tile_elems: int = 1 << 23) -> None:
        self.queries = np.ascontiguousarray(queries, dtype=np.float32)
        m = self.queries.shape[0]
        self.best_cos = np.full(m, -np.inf, dtype=np.float32)
        self.best_id = np.full(m, -1, dtype=np.int64)
        self.tile_elems = int(tile_elems)

    def update(self, refs: np.ndarray, ref_ids: np.ndarray) -> None:
        """Fold a block of unit-norm reference vectors ``refs`` (r, D) with ids ``ref_ids`` (r,) into the state."""
        refs = np.asarray(refs, dtype=np.float32)
        ref_ids = np.asarray(ref_ids, dtype=np.int64)
        m, r = self.queries.shape[0], refs.shape[0]
        if m == 0 or r == 0:
            return
        # tile over references too, so a huge block still respects tile_elems
        r_tile = max(1, min(r, self.tile_elems))
        for r0 in range(0, r, r_tile):
            rt = refs[r0 : r0 + r_tile].T  # (D, rt)
            ids = ref_ids[r0 : r0 + r_tile]
            q_tile = max(1, self.tile_elems // rt.shape[1])
            for q0 in range(0, m, q_tile):
                sim = self.queries[q0 : q0 + q_tile] @ rt  # (qt, rt)
                arg = np.argmax(sim, axis=1)
                val = sim[np.arange(sim.shape[0]), arg]
                cur = self.best_cos[q0 : q0 + q_tile]
                better = val > cur
                cur[better] = val[better]
                self.best_id[q0 : q0 + q_tile][better] = ids[arg[better]]

    def merge(self, other: "BlockedNearest") -> "BlockedNearest":
        """Combine with a state over another reference shard (same queries): elementwise max."""
        better = other.best_cos > self.best_cos
        self.best_cos[better] = other.best_cos[better]
        self.best_id[better] = other.best_id[better]
        return self

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(best cosine clipped to [-1, 1] as float64, best reference id)."""
        cos = np.clip(self.best_cos.astype(np.float64), -1.0, 1.0)
        cos[~np.isfinite(self.best_cos)] = np.nan
        return cos, self.best_id.copy()


def nearest_cosine(queries: np.ndarray, refs: np.ndarray, block_rows: int = 4096,
                   tile_elems: int = 1 << 23) -> tuple[np.ndarray, np.ndarray]:
    """One-shot twin of :class:`BlockedNearest`: best cosine and row index in ``refs`` for every query.

    Both inputs are raw vectors; they are normalised here. Zero/non-finite queries get NaN and -1;
    zero/non-finite references are skipped.
    """
    q, _ = normalize_rows(queries)
    state = BlockedNearest(q, tile_elems)
    for start in range(0, refs.shape[0], block_rows):
        r, ok = normalize_rows(refs[start : start + block_rows])
        state.update(r[ok], start + np.flatnonzero(ok))
    cos, ids = state.result()
    _, qok = normalize_rows(queries)
    cos[~qok], ids[~qok] = np.nan, -1
    return cos, ids

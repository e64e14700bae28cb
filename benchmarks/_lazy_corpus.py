"""A corpus that exists only as a seed: random-walk articles generated on demand, block by block.

Used by ``bench_engine.py plan`` to run the engine over far more windows than fit on disk or in the
client's memory: a :class:`LazySplit` is what the planner sees (n, K, D, random row access for the
bandwidth sample), a :class:`LazyShard` is what a Dask task reads (a few integers; it generates its
windows on the worker). Window ``r`` of a split is window ``r % ART`` of article ``r // ART``, so any
blocking or sharding yields the same rows. Adjacent chunks have cosine ≈ ``RHO``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ART = 25  # windows per article
RHO = 0.71


def _walk(seed: int, article: int, k: int, d: int) -> np.ndarray:
    """The ART + K unit chunks of one article (a random walk on the sphere, cosine RHO between neighbours)."""
    rng = np.random.default_rng([seed, article])
    e = rng.standard_normal((ART + k, d)).astype(np.float32)
    walk = np.empty_like(e)
    walk[0] = e[0] / np.linalg.norm(e[0])
    for j in range(1, ART + k):
        step = e[j] - (e[j] @ walk[j - 1]) * walk[j - 1]
        walk[j] = RHO * walk[j - 1] + np.sqrt(1 - RHO**2) * step / np.linalg.norm(step)
    return walk


def windows(seed: int, rows: np.ndarray, k: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Contexts (B, K, D) and targets (B, D) of the given (sorted or not) split rows."""
    rows = np.asarray(rows, dtype=np.int64)
    ctx = np.empty((rows.size, k, d), np.float32)
    tgt = np.empty((rows.size, d), np.float32)
    arts = rows // ART
    for a in np.unique(arts):
        sel = np.flatnonzero(arts == a)
        walk = _walk(seed, int(a), k, d)
        pos = rows[sel] % ART
        ctx[sel] = walk[pos[:, None] + np.arange(k)]
        tgt[sel] = walk[pos + k]
    return ctx, tgt


@dataclass
class _Rows:
    """``split.contexts[idx]`` / ``split.targets[idx]`` for the planner's random bandwidth sample."""

    split: "LazySplit"
    which: int

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        return windows(self.split.seed, np.asarray(idx), self.split.k, self.split.d)[self.which]


@dataclass
class LazyShard:
    """Rows [start, start + n) of a lazy split: what one Dask task reads (pickles to a few bytes)."""

    seed: int
    start: int
    n: int
    k: int
    d: int

    def iter_blocks(self, block_rows: int = 4096):
        for s in range(0, self.n, block_rows):
            e = min(s + block_rows, self.n)
            c, t = windows(self.seed, np.arange(self.start + s, self.start + e), self.k, self.d)
            yield s, c, t


@dataclass
class LazySplit:
    """A whole split as the planner sees it (no vectors held)."""

    name: str
    seed: int
    n: int
    k: int
    d: int
    first_article: int = 0
    valid: None = None
    id_source: str = "given"
    attrs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.source = f"lazy:{self.name}(seed={self.seed}, n={self.n})"
        self.contexts, self.targets = _Rows(self, 0), _Rows(self, 1)

    @property
    def article_ids(self) -> np.ndarray:  # 8 bytes per window on the client: the labels, never vectors
        return self.first_article + np.arange(self.n, dtype=np.int64) // ART

    def shards(self, n_shards: int) -> list[LazyShard]:
        cuts = np.linspace(0, self.n, n_shards + 1).astype(int)
        return [LazyShard(self.seed, int(a), int(b - a), self.k, self.d) for a, b in zip(cuts[:-1], cuts[1:])]

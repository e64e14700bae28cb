"""Seeded synthetic article stores and sequence files with planted effects, for tests and benchmarks.

An article is a random walk on the unit sphere: x_{t+1} = normalize(rho * x_t + sqrt(1 - rho^2) * e),
e ~ N(0, I/D). In high dimension cos(x_t, x_{t+k}) is close to rho^k, so ``rho`` plants the lag
decay (and therefore the forward-bias Delta = rho - rho^K of K-windows). Planted effects:

- ``shift``: articles of a split get a common offset direction (article-level distribution shift);
- ``drift``: x_t moves along a fixed direction v as t grows (an irreversible, time-directed effect);
- ``zero_rows``: a share of chunks set to all-zero vectors (failed encoder batches);
- duplicated articles across splits (leakage), see :func:`make_splits`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.data.sequences import SequenceSet
from lvmdiag.data.windows import window_indices
from lvmdiag.stats.resampling import as_rng


@dataclass(frozen=True)
class SyntheticStore:
    """A synthetic article store: rows sorted by (article, chunk)."""

    vectors: np.ndarray  # (N, D) float32
    article_ids: np.ndarray  # (N,) int64
    chunk_index: np.ndarray  # (N,) int64

    @property
    def n_articles(self) -> int:
        return int(np.unique(self.article_ids).size)


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms == 0, 1.0, norms)


def make_store(
    n_articles: int = 50,
    d: int = 64,
    rho: float = 0.8,
    length: tuple[int, int] | int = (12, 40),
    drift: float = 0.0,
    shift: float = 0.0,
    shift_direction: np.ndarray | None = None,
    article_rho_sd: float = 0.0,
    zero_rows: float = 0.0,
    first_article_id: int = 0,
    rng: np.random.Generator | int | None = 0,
) -> SyntheticStore:
    """Generate ``n_articles`` random-walk articles of ``length`` chunks (an int or a [lo, hi] range).

    ``article_rho_sd`` varies rho per article (clipped to [0, 0.99]) so per-article statistics have
    real between-article spread. ``drift`` adds ``drift * t * v`` (v a fixed unit vector) before
    normalising; ``shift`` adds ``shift * u`` to every chunk (u = ``shift_direction`` or a random unit vector).
    """
    rng = as_rng(rng)
    if isinstance(length, int):
        lengths = np.full(n_articles, length)
    else:
        lengths = rng.integers(length[0], length[1] + 1, size=n_articles)
    v = _normalize(rng.standard_normal(d))
    u = _normalize(rng.standard_normal(d)) if shift_direction is None else _normalize(np.asarray(shift_direction, float))
    rows, arts, chunks = [], [], []
    for a, length_a in enumerate(lengths):
        rho_a = float(np.clip(rho + article_rho_sd * rng.standard_normal(), 0.0, 0.99))
        x = np.empty((length_a, d))
        x[0] = _normalize(rng.standard_normal(d))
        noise = _normalize(rng.standard_normal((length_a, d)))
        for t in range(1, length_a):
            # remove the component of the noise along x so the step has an exact cosine rho
            e = noise[t] - (noise[t] @ x[t - 1]) * x[t - 1]
            e = _normalize(e)
            x[t] = rho_a * x[t - 1] + np.sqrt(1 - rho_a**2) * e
        t_idx = np.arange(length_a)[:, None]
        x = _normalize(x + drift * t_idx * v + shift * u)
        rows.append(x)
        arts.append(np.full(length_a, first_article_id + a))
        chunks.append(np.arange(length_a))
    vectors = np.concatenate(rows).astype(np.float32)
    if zero_rows > 0:
        vectors[rng.random(vectors.shape[0]) < zero_rows] = 0.0
    return SyntheticStore(vectors, np.concatenate(arts).astype(np.int64), np.concatenate(chunks).astype(np.int64))


def store_windows(store: SyntheticStore, k: int = 5, split: str | None = None, keep_ids: bool = True) -> SequenceSet:
    """All stride-1 windows of ``store`` as a SequenceSet (article ids kept unless ``keep_ids`` is False)."""
    ctx, tgt, art = window_indices(store.article_ids, k, store.chunk_index)
    return SequenceSet(
        contexts=store.vectors[ctx],
        targets=store.vectors[tgt],
        article_ids=art.astype(np.int64) if keep_ids else None,
        id_source="given" if keep_ids else "none",
        source=f"<synthetic {split or 'store'}>",
        split=split,
        fmt="synthetic",
    )


def reverse_articles(store: SyntheticStore) -> SyntheticStore:
    """The same store with every article's chunk order reversed (for time-reversal checks)."""
    order = np.lexsort((-store.chunk_index, store.article_ids))
    vectors = store.vectors[order]
    return SyntheticStore(vectors, store.article_ids[order], store.chunk_index.copy())


def make_splits(
    store: SyntheticStore,
    k: int = 5,
    ratios: tuple[float, ...] = (0.8, 0.2),
    names: tuple[str, ...] = ("train", "val"),
    by: str = "article",
    n_duplicated: int = 0,
    keep_ids: bool = True,
    rng: np.random.Generator | int | None = 0,
) -> dict[str, SequenceSet]:
    """Split the windows of ``store`` into named splits, by whole article or by individual window.

    ``by="window"`` reproduces the upstream mistake (windows of one article in several splits).
    ``n_duplicated`` copies that many train articles' windows into the second split as well
    (planted leakage). With ``keep_ids=False`` the files carry no article ids (arXiv form).
    """
    rng = as_rng(rng)
    ctx, tgt, art = window_indices(store.article_ids, k, store.chunk_index)
    cum = np.cumsum(ratios) / np.sum(ratios)
    if by == "article":
        uniq = np.unique(art)
        u = rng.random(uniq.size)
        split_of_article = np.searchsorted(cum, u, side="right")
        which = split_of_article[np.searchsorted(uniq, art)]
    elif by == "window":
        which = np.searchsorted(cum, rng.random(art.size), side="right")
    else:
        raise ValueError(f"by must be 'article' or 'window'; got {by!r}")
    rows_per_split = [np.flatnonzero(which == s) for s in range(len(names))]
    if n_duplicated and len(names) > 1:
        train_articles = np.unique(art[rows_per_split[0]])
        dup = rng.choice(train_articles, size=min(n_duplicated, train_articles.size), replace=False)
        extra = np.flatnonzero(np.isin(art, dup) & (which == 0))
        rows_per_split[1] = np.sort(np.r_[rows_per_split[1], extra])
    out = {}
    for name, rows in zip(names, rows_per_split):
        out[name] = SequenceSet(
            contexts=store.vectors[ctx[rows]],
            targets=store.vectors[tgt[rows]],
            article_ids=art[rows].astype(np.int64) if keep_ids else None,
            id_source="given" if keep_ids else "none",
            source=f"<synthetic {name}>",
            split=name,
            fmt="synthetic",
        )
    return out

"""Per-article statistics (windows, mean forward-bias Delta, topic) and their binning into strata.

Everything is computed in one streaming pass over row blocks with per-article sums, so memory is
O(articles x projection size), never O(rows x D). Delta of a window is the forward bias of the
upstream reports: cos(c_last, t) - cos(c_first, t). The topic of an article is a k-means cluster
(numpy, seeded) of its centroid, taken in a seeded Gaussian random projection to ``proj_dim``
dimensions (Johnson-Lindenstrauss: cosine structure is kept up to O(1/sqrt(proj_dim)) noise, and
memory stays G x proj_dim instead of G x D).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import InputError
from lvmdiag.results import Result, fmt, md_table
from lvmdiag.stats.resampling import as_rng

BUILTIN_STRATA = ("length", "delta", "topic")
_MIN_SQ_NORM = 1e-30


@dataclass(frozen=True)
class ArticleStats(Result):
    """Per-article (per-group) statistics, one row per group code 0..G-1.

    Attributes
    ----------
    n_windows : (G,) int64 windows per article
    mean_delta : (G,) float64 mean forward bias over the article's valid windows (NaN if none)
    centroids : (G, P) float64 mean of the article's projected unit targets, or None when not requested
    columns : per-article values of user columns (first row's value of each article)
    """

    n_windows: np.ndarray
    mean_delta: np.ndarray
    centroids: np.ndarray | None = None
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_groups(self) -> int:
        return int(self.n_windows.size)

    def to_markdown(self) -> str:
        return f"{self.n_groups} articles, {int(self.n_windows.sum())} windows."


@dataclass(frozen=True)
class Strata(Result):
    """Stratum code of every article and what each code means.

    Attributes
    ----------
    codes : (G,) int64 stratum per article, dense 0..H-1
    labels : tuple of H human-readable descriptions ("length 2/4, delta 1/4", "pooled small strata")
    variables : the stratification variables used, in order
    bins : number of bins actually used per variable (reduced when there are few articles)
    """

    codes: np.ndarray
    labels: tuple[str, ...]
    variables: tuple[str, ...]
    bins: tuple[int, ...]

    @property
    def n_strata(self) -> int:
        return len(self.labels)

    def to_markdown(self) -> str:
        counts = np.bincount(self.codes, minlength=self.n_strata)
        return md_table(["stratum", "articles"], [[lab, int(c)] for lab, c in zip(self.labels, counts)])


# ---------------------------------------------------------------------------------------------
# per-row columns (for --by KEY and user strata)


def column_values(seqset: SequenceSet, key: str) -> np.ndarray | None:
    """The per-row values of ``key``: an ``extras`` array, or a key of the per-row ``metadata`` dicts.

    Returns None when the file has no such column.
    """
    if key in seqset.extras and key != "metadata":
        col = np.asarray(seqset.extras[key])
        if col.ndim == 1 and col.shape[0] == seqset.n:
            return col
    meta = seqset.extras.get("metadata")
    if meta is not None:
        meta = np.asarray(meta, dtype=object)
        if meta.ndim == 1 and meta.size and isinstance(meta[0], dict) and key in meta[0]:
            return np.array([m.get(key) if isinstance(m, dict) else None for m in meta], dtype=object)
    return None


def available_columns(seqset: SequenceSet) -> list[str]:
    """Names usable as ``--by`` or user strata in this file (for error messages)."""
    names = [k for k, v in seqset.extras.items() if k != "metadata" and np.ndim(v) == 1]
    meta = seqset.extras.get("metadata")
    if meta is not None and len(meta) and isinstance(meta[0], dict):
        names += sorted(meta[0].keys())
    return names


def encode_values(columns: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Dense int64 codes for values across several per-row arrays (same value -> same code everywhere).

    Returns the codes per array and the sorted unique values (as strings when mixed types).
    """
    keyed = [np.asarray([repr(v) for v in c], dtype=object) if np.asarray(c).dtype == object else np.asarray(c) for c in columns]
    try:
        allv = np.concatenate(keyed)
        uniq, inv = np.unique(allv, return_inverse=True)
    except TypeError:
        allv = np.concatenate([np.asarray([str(v) for v in c], dtype=object) for c in keyed])
        uniq, inv = np.unique(allv, return_inverse=True)
    out, start = [], 0
    for c in keyed:
        out.append(inv[start : start + len(c)].astype(np.int64).ravel())
        start += len(c)
    return out, uniq


# ---------------------------------------------------------------------------------------------
# streaming statistics


def _block_group_sums(labels: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique labels, per-label sums of ``values`` rows) for one block, via sort + reduceat."""
    order = np.argsort(labels, kind="stable")
    sl = labels[order]
    starts = np.r_[0, np.flatnonzero(sl[1:] != sl[:-1]) + 1]
    return sl[starts], np.add.reduceat(values[order], starts, axis=0)


def window_delta(contexts: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward bias per window, cos(c_last, t) - cos(c_first, t), and a validity mask.

    ``contexts`` (B, K, D), ``targets`` (B, D). A window with a zero or non-finite vector among
    c_first, c_last, t is invalid (Delta 0, mask False).
    """
    # dot products in float32 (the embeddings' own precision; 768-term sums err ~1e-6), the
    # normalisation and difference in float64
    first, last, t = contexts[:, 0, :], contexts[:, -1, :], targets  # (B, D) each
    dot = lambda a, b: np.einsum("nd,nd->n", a, b).astype(np.float64)  # noqa: E731
    nf, nl, nt = dot(first, first), dot(last, last), dot(t, t)
    ok = (nf > _MIN_SQ_NORM) & (nl > _MIN_SQ_NORM) & (nt > _MIN_SQ_NORM)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        c_last = dot(last, t) / np.sqrt(nl * nt)
        c_first = dot(first, t) / np.sqrt(nf * nt)
        delta = c_last - c_first
    ok &= np.isfinite(delta)
    return np.where(ok, delta, 0.0), ok


def article_statistics(
    seqsets: Sequence[SequenceSet],
    labels: Sequence[np.ndarray],
    n_groups: int,
    *,
    delta: bool = True,
    topic: bool = False,
    proj_dim: int = 64,
    block_rows: int = 8192,
    rng: np.random.Generator | int | None = 0,
    progress: Callable[[int, int], None] | None = None,
    on_block: Callable[[int, int, np.ndarray, np.ndarray], None] | None = None,
) -> ArticleStats:
    """Stream every row block once and reduce it to per-article sums.

    Parameters
    ----------
    seqsets, labels : the inputs and one (N_i,) int64 group code array per input (codes 0..G-1)
    n_groups : G
    delta : accumulate the forward-bias Delta per article
    topic : accumulate randomly projected unit targets per article (for k-means topics)
    proj_dim : projection size for topics
    block_rows : rows per block (bounds memory)
    rng : seed of the random projection
    progress : optional ``callback(done_rows, total_rows)``
    on_block : optional ``callback(input_index, start, contexts_block, targets_block)`` run on every
        block, so a caller can compute more per-row values in the same single pass over the data

    Returns
    -------
    ArticleStats
        ``n_windows``, ``mean_delta`` (NaN for an article with no valid window), ``centroids`` (or None).
    """
    counts = np.zeros(n_groups, dtype=np.int64)
    for lab in labels:
        counts += np.bincount(lab, minlength=n_groups)
    delta_sum = np.zeros(n_groups)
    delta_n = np.zeros(n_groups)
    cent = None
    proj = None
    if topic:
        d = seqsets[0].d
        proj = as_rng(rng).standard_normal((d, proj_dim)) / np.sqrt(proj_dim)  # (D, P)
        cent = np.zeros((n_groups, proj_dim))
    if delta or topic or on_block is not None:
        total = sum(s.n for s in seqsets)
        done = 0
        for i, (seqset, lab) in enumerate(zip(seqsets, labels)):
            for start, ctx, tgt in seqset.iter_blocks(block_rows):
                if on_block is not None:
                    on_block(i, start, ctx, tgt)
                lb = lab[start : start + ctx.shape[0]]
                if delta:
                    dl, ok = window_delta(ctx, tgt)
                    delta_sum += np.bincount(lb, weights=dl, minlength=n_groups)
                    delta_n += np.bincount(lb, weights=ok.astype(np.float64), minlength=n_groups)
                if topic:
                    t = tgt.astype(np.float64)
                    norm = np.linalg.norm(t, axis=1, keepdims=True)
                    good = (norm[:, 0] > 0) & np.isfinite(norm[:, 0])
                    unit = np.where(good[:, None], t / np.where(good[:, None], norm, 1.0), 0.0)
                    u, sums = _block_group_sums(lb, unit @ proj)  # (U, P)
                    cent[u] += sums
                done += ctx.shape[0]
                if progress is not None:
                    progress(done, total)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_delta = np.where(delta_n > 0, delta_sum / np.maximum(delta_n, 1), np.nan) if delta else np.full(n_groups, np.nan)
        if cent is not None:
            cent = cent / np.maximum(counts, 1)[:, None]
    return ArticleStats(counts, mean_delta, cent)


# ---------------------------------------------------------------------------------------------
# binning


def quantile_bins(values: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Bin per-article values at their quantiles (each bin holds about G/n_bins articles).

    NaN values go to the middle bin. Returns (codes, inner edges).
    """
    v = np.asarray(values, dtype=np.float64)
    if n_bins <= 1 or v.size == 0:
        return np.zeros(v.size, np.int64), np.empty(0)
    finite = np.isfinite(v)
    if not finite.any():
        return np.zeros(v.size, np.int64), np.empty(0)
    edges = np.quantile(v[finite], np.linspace(0, 1, n_bins + 1)[1:-1])
    codes = np.searchsorted(edges, v, side="right").astype(np.int64)
    codes[~finite] = n_bins // 2
    # collapse empty bins (ties at an edge) so codes stay dense
    _, codes = np.unique(codes, return_inverse=True)
    return codes.astype(np.int64).ravel(), edges


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator | int | None = 0, n_iter: int = 50) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding on rows of ``x`` (G, P); returns (G,) cluster codes.

    Deterministic for a given seed. Distances are computed in chunks, so memory is O(chunk x k).
    """
    rng = as_rng(rng)
    x = np.asarray(x, dtype=np.float64)
    g = x.shape[0]
    k = int(min(k, g))
    if k <= 1:
        return np.zeros(g, np.int64)
    sq = np.einsum("ij,ij->i", x, x)

    def dist2(c: np.ndarray) -> np.ndarray:  # (G, k)
        return np.maximum(sq[:, None] - 2 * x @ c.T + np.einsum("ij,ij->i", c, c)[None, :], 0.0)

    centers = [x[int(rng.integers(g))]]
    d2 = dist2(np.asarray(centers))[:, 0]
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(g, 1.0 / g)
        centers.append(x[int(rng.choice(g, p=p))])
        d2 = np.minimum(d2, dist2(np.asarray(centers[-1:]))[:, 0])
    c = np.asarray(centers)
    codes = np.argmin(dist2(c), axis=1)
    for _ in range(n_iter):
        counts = np.bincount(codes, minlength=k)
        new = np.zeros_like(c)
        np.add.at(new, codes, x)
        empty = counts == 0
        new[~empty] /= counts[~empty, None]
        new[empty] = c[empty]
        c = new
        new_codes = np.argmin(dist2(c), axis=1)
        if np.array_equal(new_codes, codes):
            break
        codes = new_codes
    _, codes = np.unique(codes, return_inverse=True)
    return codes.astype(np.int64).ravel()


def build_strata(
    stats: ArticleStats,
    variables: Sequence[str],
    *,
    n_bins: int = 4,
    min_articles: int = 20,
    rng: np.random.Generator | int | None = 0,
) -> Strata:
    """Bin each stratification variable per article and cross the bins into strata.

    ``variables`` are "length" (windows per article), "delta" (mean forward bias), "topic" (k-means
    on centroids) or names of ``stats.columns`` (categorical values, or quantile bins when numeric
    with more than ``n_bins`` distinct values). The number of bins per variable is reduced so that a
    stratum holds about ``min_articles`` articles on average (a stratum with fewer articles than
    splits cannot be shared out); joint strata still smaller than ``min_articles`` are pooled into one.

    Returns
    -------
    Strata
        codes per article, a label per stratum, the variables and the bins used.
    """
    g = stats.n_groups
    variables = tuple(variables)
    if not variables:
        return Strata(np.zeros(g, np.int64), ("all articles",), (), ())
    m = len(variables)
    b = int(max(1, min(n_bins, np.floor((g / max(min_articles, 1)) ** (1.0 / m)))))
    codes_per_var: list[np.ndarray] = []
    names_per_var: list[list[str]] = []
    bins_used: list[int] = []
    rng = as_rng(rng)
    for var in variables:
        if var == "length":
            c, edges = quantile_bins(stats.n_windows, b)
            names = _edge_names("length", edges, int(c.max()) + 1 if c.size else 1, digits=0)
        elif var == "delta":
            c, edges = quantile_bins(stats.mean_delta, b)
            names = _edge_names("delta", edges, int(c.max()) + 1 if c.size else 1, digits=3)
        elif var == "topic":
            if stats.centroids is None:
                raise InputError("topic strata need article centroids; compute statistics with topic=True.")
            c = kmeans(stats.centroids, b, rng=rng)
            names = [f"topic {i + 1}" for i in range(int(c.max()) + 1)]
        elif var in stats.columns:
            c, names = _column_bins(stats.columns[var], var, b)
        else:
            raise InputError(
                f"unknown stratification variable {var!r}; use {', '.join(BUILTIN_STRATA)} or a metadata column "
                f"({', '.join(sorted(stats.columns)) or 'none in these files'})."
            )
        codes_per_var.append(c)
        names_per_var.append(names)
        bins_used.append(len(names))
    stacked = np.stack(codes_per_var, axis=1)  # (G, m)
    uniq, joint = np.unique(stacked, axis=0, return_inverse=True)
    joint = joint.ravel()
    counts = np.bincount(joint, minlength=uniq.shape[0])
    small = counts < min_articles
    labels = [", ".join(names_per_var[j][int(u[j])] for j in range(m)) for u in uniq]
    if small.any():
        # a cell with fewer articles than ~1/min(ratio) cannot be shared out; pool such cells
        keep = np.flatnonzero(~small)
        remap = np.full(uniq.shape[0], keep.size, dtype=np.int64)
        remap[keep] = np.arange(keep.size)
        joint = remap[joint]
        pooled = f"pooled small strata ({int(small.sum())} cells)" if keep.size else "all articles"
        labels = [labels[i] for i in keep] + [pooled]
    return Strata(joint.astype(np.int64).ravel(), tuple(labels), variables, tuple(bins_used))


def _edge_names(var: str, edges: np.ndarray, n: int, digits: int) -> list[str]:
    """Readable bin names from inner quantile edges."""
    if n <= 1 or edges.size == 0:
        return [f"{var} (all)"]
    e = np.unique(edges)
    show = (lambda v: f"{v:.0f}") if digits == 0 else (lambda v: fmt(v, digits))
    names = [f"{var} <= {show(e[0])}"]
    names += [f"{var} {show(a)}-{show(b)}" for a, b in zip(e[:-1], e[1:])]
    names.append(f"{var} > {show(e[-1])}")
    return names[:n] if len(names) >= n else [f"{var} bin {i + 1}" for i in range(n)]


def _column_bins(values: np.ndarray, name: str, n_bins: int) -> tuple[np.ndarray, list[str]]:
    """Codes of a per-article user column: categories, or quantile bins for many-valued numbers."""
    v = np.asarray(values)
    if v.dtype.kind in "iuf" and np.unique(v).size > n_bins:
        c, edges = quantile_bins(v.astype(np.float64), n_bins)
        return c, _edge_names(name, edges, int(c.max()) + 1, digits=3)
    keys = np.asarray([str(x) for x in v], dtype=object)
    uniq, c = np.unique(keys, return_inverse=True)
    return c.astype(np.int64).ravel(), [f"{name}={u}" for u in uniq]

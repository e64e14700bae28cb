"""The streaming pass of the divergence analyzer: one read of each split into mergeable per-article state.

Per split and per embedding view ("context": every context chunk of every window, "target": the
target chunk) the pass keeps per-unit sums of the raw vectors and of random Fourier features, the
per-fold Gram matrices of the classifier, and per-window statistics of at most ~:data:`WINDOW_CAP`
windows (whole articles sampled by a hash above it). Memory is O(U x (D + D_rff) + F x D^2) for U
units (articles in the split) plus the capped sample, never O(N^2) or O(N x D).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from lvmdiag.analyzers.window_cosines import adjacent_coherence, position_cosines, window_cosines
from lvmdiag.data.hashing import hash_rows
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.stats.classifier_test import FoldGrams
from lvmdiag.stats.hash_sample import keep_at_rate
from lvmdiag.stats.mmd import RandomFourierFeatures

VIEWS = ("context", "target")
ProgressFn = Callable[[int], None]


def group_sum_into(out: np.ndarray, unit: np.ndarray, x: np.ndarray) -> None:
    """out[unit[i]] += x[i] for every row, via one sort and ``np.add.reduceat`` (faster than ``np.add.at``)."""
    if unit.size == 0:
        return
    if np.all(unit[1:] >= unit[:-1]):  # windows usually arrive in article order: no sort needed
        us, xs = unit, x
    else:
        order = np.argsort(unit, kind="stable")
        us, xs = unit[order], x[order]
    starts = np.r_[0, np.flatnonzero(us[1:] != us[:-1]) + 1]
    # reduce within the block in the input dtype (float32: <= block rows terms), accumulate in float64
    out[us[starts]] += np.add.reduceat(xs, starts, axis=0)


def distinct_rows(keys: np.ndarray, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """First row (in row order) and multiplicity of each distinct chunk among rows with exact-content ``keys``.

    None when every row is distinct, or when one chunk occurs in two units (duplicated content in two
    articles: the block is then processed row by row, so every unit keeps its own rows). Keys are 64-bit
    content hashes (:func:`lvmdiag.data.hashing.hash_rows`); two different chunks of one block share a
    key with probability ~ rows² / 2^65 (< 1e-10 for a block).
    """
    if keys.size == 0:
        return None
    _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
    if first.size == keys.size or not np.array_equal(unit[first][inverse.ravel()], unit):
        return None
    order = np.argsort(first)
    return first[order], counts[order]


def view_rows(view: str, ctx: np.ndarray, tgt: np.ndarray, unit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of one view for a block of windows, with their units: (n*K, D) context chunks or (n, D) targets."""
    if view == "context":
        n, k, d = ctx.shape
        return ctx.reshape(n * k, d), np.repeat(unit, k)
    return tgt, unit


@dataclass
class ViewState:
    """Mergeable per-unit state of one embedding view of one split."""

    raw: np.ndarray  # (U, D) sums of vectors
    rff: np.ndarray  # (U, D_rff) sums of random Fourier features
    counts: np.ndarray  # (U,) rows
    grams: FoldGrams


#: per-window values kept per split for the KS/Wasserstein tests; above it, whole articles are sampled
WINDOW_CAP = 1_000_000
#: articles per split entering the divergence state (each costs 2 views x (D + D_rff) float64 sums, ~20 kB
#: at 768-d); a split with more contributes a hash sample of this many articles to every divergence test
ARTICLE_CAP = 20_000
#: salt of the article sample (a fixed hash of the article code: no generator is consumed)
ARTICLE_SALT = 0x5EED_D1CE


@dataclass
class SplitState:
    """Everything the tests need from one split, collected in one pass; O(articles) plus a capped sample.

    Per unit (article-in-split): vector sums, random-feature sums, row counts and fold Grams per view,
    sums of the position profile cos(c_i, t), the first usable row. Per-window values (for the KS and
    Wasserstein tests) only for the windows of sampled articles: every article when the split has at
    most :data:`WINDOW_CAP` windows, else a ``sample_rate`` share of articles chosen by a hash of the
    article code (whole articles, so the article permutation test stays valid on the sample).
    """

    name: str
    n_windows: int
    n_used: int  # usable windows (valid, non-zero, finite)
    unit_of_row: np.ndarray  # (N_sampled,) unit index of each sampled used window
    unit_article: np.ndarray  # (U,) global article code of each unit
    views: dict[str, ViewState] = field(default_factory=dict)
    per_window: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N_sampled,)
    prof_sums: np.ndarray | None = None  # (U, K) sums of cos(c_i, t) over every used window
    first_row: np.ndarray | None = None  # (U,) split row of each unit's first used window
    sample_rate: float = 1.0  # share of the state's articles whose per-window values are kept
    article_rate: float = 1.0  # share of the split's articles in the state (hash sample above ARTICLE_CAP)
    n_outside: int = 0  # usable windows of articles left out of the article sample

    @property
    def n_units(self) -> int:
        return int(self.unit_article.size)

    @property
    def n_sampled(self) -> int:
        return int(self.unit_of_row.size)

    def merge(self, other: "SplitState") -> "SplitState":
        """State of this shard's rows followed by ``other``'s rows of the same split (sums add, rows concatenate).

        Units are matched by article code, so an article cut across the two shards becomes one unit.
        """
        arts, inverse = np.unique(np.r_[self.unit_article, other.unit_article], return_inverse=True)
        remap_a, remap_b = inverse[: self.n_units], inverse[self.n_units :]

        def scatter(xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
            out = np.zeros((arts.size,) + xa.shape[1:])
            np.add.at(out, remap_a, xa)
            np.add.at(out, remap_b, xb)
            return out

        views = {}
        for v, sa in self.views.items():
            sb = other.views[v]
            views[v] = ViewState(scatter(sa.raw, sb.raw), scatter(sa.rff, sb.rff), scatter(sa.counts, sb.counts),
                                 sa.grams.merge(sb.grams))
        first = np.full(arts.size, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first, remap_a, self.first_row)
        np.minimum.at(first, remap_b, other.first_row)
        return SplitState(
            name=self.name,
            n_windows=self.n_windows + other.n_windows,
            n_used=self.n_used + other.n_used,
            unit_of_row=np.r_[remap_a[self.unit_of_row], remap_b[other.unit_of_row]].astype(np.int64),
            unit_article=arts,
            views=views,
            per_window={k: np.r_[v, other.per_window[k]] for k, v in self.per_window.items()},
            prof_sums=scatter(self.prof_sums, other.prof_sums),
            first_row=first,
            sample_rate=self.sample_rate,
            article_rate=self.article_rate,
            n_outside=self.n_outside + other.n_outside,
        )


class SplitAccumulator:
    """The pass of :func:`accumulate_split` block by block, over the rows of one part of a split (picklable).

    Units are the distinct article codes of the part; parts of one split combine with :meth:`SplitState.merge`.
    """

    def __init__(self, name: str, article_codes: np.ndarray, fold_of_article: np.ndarray,
                 features: dict[str, RandomFourierFeatures], n_folds: int, d: int, k: int, *,
                 row_offset: int = 0, sample_rate: float = 1.0, article_rate: float = 1.0,
                 sample_key: np.ndarray | None = None) -> None:
        self.name, self.d, self.k, self.features = name, d, k, features
        self.row_offset, self.sample_rate, self.article_rate = row_offset, sample_rate, article_rate
        uniq, unit_all = np.unique(np.asarray(article_codes), return_inverse=True)
        unit_all = unit_all.ravel()
        # articles are sampled by a hash of their key (:func:`sample_keys`: the rank among the split's articles)
        key = uniq if sample_key is None else np.asarray(sample_key)[uniq]
        in_sample = keep_at_rate(ARTICLE_SALT, key, article_rate)
        if not in_sample.all():  # rows of articles outside the sample get unit -1 and are skipped
            index = np.where(in_sample, np.cumsum(in_sample) - 1, -1)
            uniq, unit_all, key = uniq[in_sample], index[unit_all], key[in_sample]
        self.uniq, self.unit_all = uniq, unit_all
        self.n_outside = 0
        n_units = uniq.size
        self.unit_fold = fold_of_article[uniq]
        self.views = {
            v: ViewState(np.zeros((n_units, d)), np.zeros((n_units, features[v].n_features)), np.zeros(n_units),
                         FoldGrams(d, n_folds))
            for v in VIEWS
        }
        # units whose windows are kept: the same hash, so a subset of the article sample
        self.keep_unit = keep_at_rate(ARTICLE_SALT, key, sample_rate * article_rate)
        self.prof_sums = np.zeros((n_units, k))
        self.first_row = np.full(n_units, np.iinfo(np.int64).max, dtype=np.int64)
        self.n_used = 0
        self.units: list[np.ndarray] = []
        self.prof_parts: list[np.ndarray] = []
        self.coh_parts: list[np.ndarray] = []
        self.tn_parts: list[np.ndarray] = []
        self.cn_parts: list[np.ndarray] = []

    def update(self, start: int, ctx: np.ndarray, tgt: np.ndarray, valid: np.ndarray,
               context_keys: np.ndarray | None = None) -> None:
        """Fold in rows ``[start, start + B)`` of the part (``start`` relative to the part).

        ``context_keys`` (B, K) are the exact-content keys of the context chunks (hashed here when None).
        """
        stop = start + ctx.shape[0]
        n_units = self.uniq.size
        wc = window_cosines(ctx, tgt)
        ok = wc.ok & valid
        inside = self.unit_all[start:stop] >= 0
        if not inside.all():
            self.n_outside += int((ok & ~inside).sum())
            ok &= inside
        if context_keys is None:
            context_keys = hash_rows(ctx.reshape(-1, ctx.shape[2])).reshape(ctx.shape[:2])
        if not ok.all():  # copies only when some rows are excluded
            ctx, tgt, context_keys = ctx[ok], tgt[ok], context_keys[ok]
        unit = self.unit_all[start:stop][ok]
        rows = self.row_offset + start + np.flatnonzero(ok)
        np.minimum.at(self.first_row, unit, rows)
        self.n_used += int(unit.size)
        prof = position_cosines(wc)[ok]
        group_sum_into(self.prof_sums, unit, prof)
        keep = self.keep_unit[unit]  # per-window values of sampled articles only
        if not keep.all():
            self.units.append(unit[keep])
            self.prof_parts.append(prof[keep])
            self.coh_parts.append(adjacent_coherence(wc)[ok][keep])
            self.tn_parts.append(np.sqrt(np.einsum("nd,nd->n", tgt[keep], tgt[keep], dtype=np.float64)))
            self.cn_parts.append(np.sqrt(np.einsum("nkd,nkd->nk", ctx[keep], ctx[keep], dtype=np.float64)).mean(axis=1))
        else:
            self.units.append(unit)
            self.prof_parts.append(prof)
            self.coh_parts.append(adjacent_coherence(wc)[ok])  # same definition as the bias report's lag 1
            # float64 accumulation without a float64 copy of the block
            self.tn_parts.append(np.sqrt(np.einsum("nd,nd->n", tgt, tgt, dtype=np.float64)))
            self.cn_parts.append(np.sqrt(np.einsum("nkd,nkd->nk", ctx, ctx, dtype=np.float64)).mean(axis=1))
        for v, st in self.views.items():
            x, u = view_rows(v, ctx, tgt, unit)
            mult = None
            if v == "context":  # stride-1 windows repeat each chunk in up to K windows: do the work once per chunk
                distinct = distinct_rows(context_keys.reshape(-1), u)
                if distinct is not None:
                    first, mult = distinct
                    x, u = x[first], u[first]
            if mult is None:
                group_sum_into(st.raw, u, x)
                group_sum_into(st.rff, u, self.features[v].transform(x))
                st.counts += np.bincount(u, minlength=n_units)
                st.grams.update(x, self.unit_fold[u])
            else:  # a chunk held by m windows counts m times (sums weighted by m, Gram rows by √m)
                w = mult.astype(np.float32)[:, None]
                group_sum_into(st.raw, u, x * w)
                group_sum_into(st.rff, u, self.features[v].transform(x) * w)
                st.counts += np.bincount(u, weights=mult, minlength=n_units)
                st.grams.update(x, self.unit_fold[u], weights=mult)

    def finish(self) -> SplitState:
        """The part's SplitState (per-window statistics of sampled articles in row order)."""
        k = self.k
        profile = np.concatenate(self.prof_parts) if self.prof_parts else np.zeros((0, k))
        per_window: dict[str, np.ndarray] = {}
        if k >= 2:  # with one context chunk there is no Δ and no adjacent pair
            per_window["delta"] = profile[:, -1] - profile[:, 0]
            per_window["coherence"] = np.concatenate(self.coh_parts) if self.coh_parts else np.zeros(0)
        for i in range(k):  # the position profile, one distribution per context position
            per_window[f"cos(c_{i},t)"] = profile[:, i]
        per_window["target_norm"] = np.concatenate(self.tn_parts) if self.tn_parts else np.zeros(0)
        per_window["context_norm"] = np.concatenate(self.cn_parts) if self.cn_parts else np.zeros(0)
        return SplitState(
            name=self.name,
            n_windows=int(self.unit_all.size),
            n_used=self.n_used,
            unit_of_row=np.concatenate(self.units) if self.units else np.zeros(0, np.int64),
            unit_article=self.uniq,
            views=self.views,
            per_window=per_window,
            prof_sums=self.prof_sums,
            first_row=self.first_row,
            sample_rate=self.sample_rate,
            article_rate=self.article_rate,
            n_outside=self.n_outside,
        )


def sample_keys(split_codes: np.ndarray, n_codes: int) -> np.ndarray:
    """(n_codes,) key each article of one split is hash-sampled by: its rank among the split's articles.

    Article codes are numbered over every split of a run, so hashing the code itself would change a split's
    sample when another split (an ood file) is added; the rank within the split does not change.
    """
    key = np.full(n_codes, -1, dtype=np.int64)
    uniq = np.unique(split_codes)
    key[uniq] = np.arange(uniq.size)
    return key


def accumulate_split(
    ss: SequenceSet,
    name: str,
    article_codes: np.ndarray,
    fold_of_article: np.ndarray,
    features: dict[str, RandomFourierFeatures],
    n_folds: int,
    block_rows: int,
    tick: ProgressFn,
    sample_rate: float = 1.0,
    row_offset: int = 0,
    article_rate: float = 1.0,
    sample_key: np.ndarray | None = None,
) -> SplitState:
    """One pass over ``ss``: per-unit sums, fold Grams and per-window statistics (see module doc)."""
    valid = np.ones(ss.n, bool) if ss.valid is None else np.asarray(ss.valid, bool)
    acc = SplitAccumulator(name, article_codes, fold_of_article, features, n_folds, ss.d, ss.k,
                           sample_rate=sample_rate, row_offset=row_offset, article_rate=article_rate,
                           sample_key=sample_key)
    for start, ctx, tgt in ss.iter_blocks(block_rows):
        stop = start + ctx.shape[0]
        acc.update(start, ctx, tgt, valid[start:stop])
        tick(stop - start)
    return acc.finish()


def bandwidth_sample(
    splits: list[SequenceSet], view: str, m: int, rng: np.random.Generator
) -> np.ndarray:
    """Up to ``m`` random non-zero rows of one view over ``splits`` (for the median heuristic; divergence passes the reference)."""
    sizes = np.array([s.n for s in splits])
    total = int(sizes.sum())
    picks = np.sort(rng.choice(total, size=min(m, total), replace=False))
    offsets = np.r_[0, np.cumsum(sizes)]
    rows = []
    for i, s in enumerate(splits):
        local = picks[(picks >= offsets[i]) & (picks < offsets[i + 1])] - offsets[i]
        if local.size == 0:
            continue
        if view == "context":
            pos = rng.integers(0, s.k, size=local.size)
            rows.append(np.asarray(s.contexts[local], dtype=np.float64)[np.arange(local.size), pos])
        else:
            rows.append(np.asarray(s.targets[local], dtype=np.float64))
    x = np.concatenate(rows)
    keep = np.isfinite(x).all(1) & (np.einsum("ij,ij->i", x, x) > 0)
    return x[keep]

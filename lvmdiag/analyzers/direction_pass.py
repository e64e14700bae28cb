"""Streaming pass and per-split statistics of the direction analyzer (features, Δ, lag-matched offsets).

One pass over a split's row blocks computes, per usable window, the classifier's odd features (vector
slopes and cosine slopes), Δ = cos(c_last, t) - cos(c_0, t) and the forward/backward cosines at equal
lags. Memory is bounded: per-article sums for Δ and the lags, and a uniform bottom-k sample of at most
``max_windows`` classifier rows (:class:`DirectionAccumulator`), so the state does not grow with N.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from lvmdiag.analyzers.window_cosines import window_cosines, window_delta
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.results import ConfidenceInterval, Estimate, Result
from lvmdiag.stats.hash_sample import sample_keys
from lvmdiag.stats.resampling import cluster_bootstrap_ratio, permutation_pvalue
from lvmdiag.stats.reversal import cosine_slope_features, slope_features


@dataclass(frozen=True)
class LagMatched(Result):
    """Forward vs backward similarity at equal lag ``lag`` around ``pivot`` ("c_last" or "all")."""

    pivot: str
    lag: int
    forward: float  # mean cos(x_j, x_{j+lag})
    backward: float  # mean cos(x_j, x_{j-lag})
    difference: Estimate  # forward - backward, article-bootstrap CI
    pvalue: float | None  # article sign-flip p (pooled pivots only: there reversal negates the difference exactly)
    n_resamples: int

    def to_markdown(self) -> str:
        return f"{self.pivot} k={self.lag}: {self.difference.to_markdown()}"


@dataclass
class SplitStats:
    """One split's direction statistics: per-article sums (articles with a usable window, in label order)
    and the classifier rows (a uniform sample of at most ``max_windows`` usable windows, in row order)."""

    phi: np.ndarray  # (n_cls, D + K - 1) float32 features of the classifier rows
    phi_groups: np.ndarray  # (n_cls,) dense article codes of the classifier rows
    counts: np.ndarray  # (G,) usable windows per article
    delta_sums: np.ndarray  # (G,) sum of Δ per article
    fwd_sums: np.ndarray  # (G, L) sums of forward cosines per lag statistic
    bwd_sums: np.ndarray  # (G, L)
    diff_sums: np.ndarray  # (G, L) sums of forward - backward, each rounded to 1e-7
    n_used: int
    n_groups: int
    n_windows: int


def lag_specs(k: int) -> list[tuple[str, int]]:
    """(pivot, lag) pairs reported: lag 1 around c_last, and every lag with a symmetric pivot set."""
    specs = [("c_last", 1)] if k >= 2 else []
    specs += [("all", lag) for lag in range(1, (k // 2) + 1)]
    return specs


def lag_values(cos: np.ndarray, specs: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """(B, L) forward and backward mean cosines for each (pivot, lag) spec from window cosines (B, K+1, K+1)."""
    k = cos.shape[1] - 1
    fwd = np.empty((cos.shape[0], len(specs)))
    bwd = np.empty_like(fwd)
    for c, (pivot, lag) in enumerate(specs):
        pivots = [k - 1] if pivot == "c_last" else list(range(lag, k - lag + 1))
        fwd[:, c] = np.mean([cos[:, j, j + lag] for j in pivots], axis=0)
        bwd[:, c] = np.mean([cos[:, j, j - lag] for j in pivots], axis=0)
    return fwd, bwd


def block_values(ctx: np.ndarray, tgt: np.ndarray, valid: np.ndarray, specs: list[tuple[str, int]]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One block's (phi, ok, Δ, forward, backward) of its usable windows; ``ok`` marks them among the block's rows."""
    phi, ok = slope_features(ctx, tgt)
    wc = window_cosines(ctx, tgt)
    phi = np.concatenate([phi, cosine_slope_features(wc.cos).astype(np.float32)], axis=1)
    ok &= wc.ok & valid
    fwd, bwd = lag_values(wc.cos, specs)
    return phi[ok], ok, window_delta(wc)[ok], fwd[ok], bwd[ok]


def dense_labels(labels: np.ndarray) -> np.ndarray:
    """Article labels of any kind as dense int64 codes 0..G-1 in sorted label order."""
    _, codes = np.unique(np.asarray(labels), return_inverse=True)
    return codes.astype(np.int64).ravel()


class DirectionAccumulator:
    """Mergeable state of one split's direction pass, bounded in memory.

    Per article (by label value): the count of usable windows and the sums of Δ, of the forward and
    backward lag cosines and of their differences rounded to 1e-7 (every statistic but the classifier
    needs only these). The classifier rows are a bottom-k sample: the ``max_windows`` usable windows with
    the smallest :func:`sample_keys`, a uniform sample without replacement, mergeable exactly. Memory:
    O(articles x (2 + 3L)) float64 + O(max_windows x (D + K)) float32, whatever N.
    """

    def __init__(self, k: int, d: int, max_windows: int | None, salt: int) -> None:
        self.specs = lag_specs(k)
        self.k, self.d, self.max_windows, self.salt = k, d, max_windows, int(salt)
        self.sums = np.zeros((0, 2 + 3 * len(self.specs)))  # count, Δ, fwd (L), bwd (L), rounded diff (L)
        self.n_used = 0
        self.n_rows = 0  # every row seen, usable or not
        self._sample: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # (keys, rows, labels, phi)
        self._n_sample = 0
        self._threshold: np.uint64 | None = None  # largest kept key once the sample is full

    def update(self, start: int, ctx: np.ndarray, tgt: np.ndarray, valid: np.ndarray, labels: np.ndarray) -> None:
        """Add one block of rows ``start ..``; ``labels`` are the block rows' article labels."""
        self.n_rows += int(ctx.shape[0])
        phi, ok, delta, fwd, bwd = block_values(ctx, tgt, valid, self.specs)
        lab = np.asarray(labels, dtype=np.int64)[ok]
        if lab.size == 0:
            return
        values = np.column_stack([np.ones(lab.size), delta, fwd, bwd, np.round(fwd - bwd, 7)])
        self._grow(int(lab.max()) + 1)
        np.add.at(self.sums, lab, values)
        self.n_used += int(lab.size)
        rows = start + np.flatnonzero(ok)
        self._add_sample(sample_keys(self.salt, rows), rows.astype(np.int64), lab, phi)

    def merge(self, other: "DirectionAccumulator") -> "DirectionAccumulator":
        """Both parts' sums and the bottom-k of both samples (rows of distinct parts are distinct)."""
        self._grow(other.sums.shape[0])
        self.sums[: other.sums.shape[0]] += other.sums
        self.n_used += other.n_used
        self.n_rows += other.n_rows
        for part in other._sample:
            self._add_sample(*part)
        self._compact(force=True)
        return self

    def finish(self) -> "SplitStats":
        """The split's statistics: article sums in label order, the sample in row order."""
        self._compact(force=True)
        keys, rows, labels, phi = self._sample[0] if self._sample else self._empty()
        _, phi_groups = np.unique(labels, return_inverse=True)
        present = self.sums[:, 0] > 0
        L = len(self.specs)
        s = self.sums[present]
        return SplitStats(phi=phi, phi_groups=phi_groups.astype(np.int64).ravel(),
                          counts=s[:, 0], delta_sums=s[:, 1], fwd_sums=s[:, 2 : 2 + L], bwd_sums=s[:, 2 + L : 2 + 2 * L],
                          diff_sums=s[:, 2 + 2 * L :], n_used=self.n_used, n_groups=int(present.sum()),
                          n_windows=self.n_rows)

    def _grow(self, n: int) -> None:
        if n > self.sums.shape[0]:
            self.sums = np.vstack([self.sums, np.zeros((n - self.sums.shape[0], self.sums.shape[1]))])

    def _empty(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                np.zeros((0, self.d + max(self.k - 1, 0)), np.float32))

    def _add_sample(self, keys: np.ndarray, rows: np.ndarray, labels: np.ndarray, phi: np.ndarray) -> None:
        if self._threshold is not None:  # the sample is full: only keys below its largest can enter
            enter = keys < self._threshold
            if not enter.all():
                keys, rows, labels, phi = keys[enter], rows[enter], labels[enter], phi[enter]
        if keys.size == 0:
            return
        self._sample.append((keys, rows, labels, phi))
        self._n_sample += keys.size
        if self.max_windows is not None and self._n_sample > self.max_windows + self.max_windows // 4:
            self._compact()

    def _compact(self, force: bool = False) -> None:
        """One piece: the bottom-k rows of every piece, in row order (gathered piece by piece, no full concat)."""
        pieces = self._sample
        if not pieces or (len(pieces) == 1 and not force and self._n_sample <= (self.max_windows or self._n_sample)):
            return
        keys = np.concatenate([p[0] for p in pieces])
        rows = np.concatenate([p[1] for p in pieces])
        labels = np.concatenate([p[2] for p in pieces])
        sel = np.arange(keys.size)
        full = self.max_windows is not None and keys.size >= self.max_windows
        if self.max_windows is not None and keys.size > self.max_windows:
            sel = np.argpartition(keys, self.max_windows - 1)[: self.max_windows]
        sel = sel[np.argsort(rows[sel], kind="stable")]
        sizes = np.array([p[0].size for p in pieces])
        piece_of = np.repeat(np.arange(len(pieces)), sizes)[sel]
        local = sel - np.r_[0, np.cumsum(sizes)[:-1]][piece_of]
        phi = np.empty((sel.size, pieces[0][3].shape[1]), np.float32)
        for i, p in enumerate(pieces):
            m = piece_of == i
            phi[m] = p[3][local[m]]
        self._sample = [(keys[sel], rows[sel], labels[sel], phi)]
        self._n_sample = sel.size
        self._threshold = keys[sel].max() if full else None


def stream_split(seq: SequenceSet, labels: np.ndarray, block_rows: int, max_windows: int | None,
                 salt: int, tick: Callable[[int], None]) -> SplitStats:
    """One pass over a split's blocks: article sums of Δ and lag-matched cosines, and the classifier sample."""
    acc = DirectionAccumulator(seq.k, seq.d, max_windows, salt)
    valid = np.ones(seq.n, bool) if seq.valid is None else np.asarray(seq.valid, bool)
    labels = np.asarray(labels, dtype=np.int64)
    for start, ctx, tgt in seq.iter_blocks(block_rows):
        stop = start + ctx.shape[0]
        acc.update(start, ctx, tgt, valid[start:stop], labels[start:stop])
        tick(ctx.shape[0])
    return acc.finish()


# --------------------------------------------------------------------------------------------------
# per-split statistics


def delta_estimate(st: SplitStats, n_bootstrap: int, rng: np.random.Generator) -> Estimate:
    """Mean Δ over usable windows with an article-bootstrap CI (none with fewer than 2 articles).

    The same mean and the same kind of interval (percentile bootstrap of a ratio of per-article sums) as the
    temporal-bias section's Δ, from this analyzer's own bootstrap draw, so with few replicates the interval
    ends differ from the bias section's by bootstrap noise (``lvmdiag direction`` has no bias result to reuse).
    """
    if st.n_groups < 2:
        return Estimate(float(st.delta_sums.sum() / st.n_used) if st.n_used else float("nan"), None,
                        "mean over windows")
    boot = cluster_bootstrap_ratio(st.delta_sums, st.counts, n_resamples=n_bootstrap, rng=rng)
    return Estimate(float(boot.estimate[0]), boot.ci(0),
                    f"mean over windows, percentile article-bootstrap CI ({n_bootstrap} replicates)")


def _rounded(ci: ConfidenceInterval) -> ConfidenceInterval:
    """The interval at the 1e-7 resolution of float32 cosines."""
    return ConfidenceInterval(float(np.round(ci.low, 7)), float(np.round(ci.high, 7)), ci.level)


def lag_matched_stats(st: SplitStats, k: int, n_permutations: int, n_bootstrap: int,
                      rng: np.random.Generator) -> tuple[LagMatched, ...]:
    """Forward - backward cosine at equal lags: article-bootstrap CI, and an article sign-flip p for pooled pivots."""
    specs = lag_specs(k)
    if st.n_used == 0:
        return ()
    # cosines from float32 dot products carry ~1e-7 rounding error; the per-window differences were
    # rounded to 1e-7 before summing, which keeps that noise from being reported (and tested) as an asymmetry
    counts, sums = st.counts, st.diff_sums
    boot = cluster_bootstrap_ratio(sums, counts, n_resamples=n_bootstrap, rng=rng) if st.n_groups >= 2 else None
    # the mean of differences rounded to 1e-7 can still land at ~1e-9 (not zero) in exactly symmetric
    # data; round the reported value and interval to the same resolution so noise never shows as an effect
    observed = np.round(sums.sum(0) / counts.sum(), 7)
    # sign flips of whole articles: exact null for the pooled statistic, which reversal negates exactly
    signs = rng.integers(0, 2, size=(n_permutations, st.n_groups)) * 2.0 - 1.0
    null = (signs @ sums) / counts.sum()  # (B, L)
    out = []
    for c, (pivot, lag) in enumerate(specs):
        p = permutation_pvalue(observed[c], null[:, c]) if pivot == "all" else None
        out.append(LagMatched(
            pivot=pivot, lag=lag,
            forward=float(st.fwd_sums[:, c].sum() / st.n_used), backward=float(st.bwd_sums[:, c].sum() / st.n_used),
            difference=Estimate(float(observed[c]), _rounded(boot.ci(c)) if boot is not None else None,
                                "article bootstrap CI"),
            pvalue=p, n_resamples=n_permutations if p is not None else 0,
        ))
    return tuple(out)

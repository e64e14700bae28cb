"""Streaming pass and per-split statistics of the direction analyzer (features, Δ, lag-matched offsets).

One pass over a split's row blocks computes, per usable window, the classifier's odd features (vector
slopes and cosine slopes), Δ = cos(c_last, t) - cos(c_0, t) and the forward/backward cosines at equal
lags; memory is O(N x (D + K)) for the features (capped by ``max_windows``) and O(N) for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from lvmdiag.analyzers.window_cosines import window_cosines, window_delta
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.results import ConfidenceInterval, Estimate, Result
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
    """Per-window quantities of one split's usable windows (the classifier rows may be a subset)."""

    phi: np.ndarray  # (n_cls, D) float32 features of the classifier rows
    phi_groups: np.ndarray  # (n_cls,) dense group codes
    delta: np.ndarray  # (n_used,) per-window Δ
    lag_fwd: np.ndarray  # (n_used, L) forward cosines per lag statistic
    lag_bwd: np.ndarray  # (n_used, L)
    groups: np.ndarray  # (n_used,) dense group codes
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


def assemble_split(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
                   labels: np.ndarray, n_windows: int, d: int, k: int, max_windows: int | None,
                   rng: np.random.Generator) -> SplitStats:
    """SplitStats from the per-block values of a split, in row order (``labels``: every row of the split)."""
    specs = lag_specs(k)
    phis, oks, deltas, fwds, bwds = (list(x) for x in zip(*parts)) if parts else ([], [], [], [], [])
    ok_all = np.concatenate(oks) if oks else np.zeros(0, bool)
    _, groups = np.unique(np.asarray(labels)[ok_all], return_inverse=True)
    groups = groups.astype(np.int64).ravel()
    phi = np.concatenate(phis) if phis else np.zeros((0, d + max(k - 1, 0)), np.float32)
    n_used = phi.shape[0]
    if max_windows is not None and n_used > max_windows:
        keep = np.sort(rng.choice(n_used, size=max_windows, replace=False))
        phi, phi_groups = phi[keep], groups[keep]
        _, phi_groups = np.unique(phi_groups, return_inverse=True)
    else:
        phi_groups = groups
    return SplitStats(
        phi=phi, phi_groups=phi_groups.astype(np.int64).ravel(),
        delta=np.concatenate(deltas) if deltas else np.zeros(0),
        lag_fwd=np.concatenate(fwds) if fwds else np.zeros((0, len(specs))),
        lag_bwd=np.concatenate(bwds) if bwds else np.zeros((0, len(specs))),
        groups=groups, n_groups=int(groups.max()) + 1 if groups.size else 0, n_windows=n_windows,
    )


def stream_split(seq: SequenceSet, labels: np.ndarray, block_rows: int, max_windows: int | None,
                  rng: np.random.Generator, tick: Callable[[int], None]) -> SplitStats:
    """One pass over a split's blocks: features, Δ and lag-matched cosines of its usable windows."""
    specs = lag_specs(seq.k)
    valid = np.ones(seq.n, bool) if seq.valid is None else np.asarray(seq.valid, bool)
    parts = []
    for start, ctx, tgt in seq.iter_blocks(block_rows):
        parts.append(block_values(ctx, tgt, valid[start : start + ctx.shape[0]], specs))
        tick(ctx.shape[0])
    return assemble_split(parts, labels, seq.n, seq.d, seq.k, max_windows, rng)


# --------------------------------------------------------------------------------------------------
# per-split statistics


def delta_estimate(st: SplitStats, n_bootstrap: int, rng: np.random.Generator) -> Estimate:
    """Mean Δ over usable windows with an article-bootstrap CI (none with fewer than 2 articles)."""
    if st.n_groups < 2:
        return Estimate(float(np.mean(st.delta)) if st.delta.size else float("nan"), None, "mean over windows")
    sums = np.bincount(st.groups, weights=st.delta, minlength=st.n_groups)
    counts = np.bincount(st.groups, minlength=st.n_groups).astype(float)
    boot = cluster_bootstrap_ratio(sums, counts, n_resamples=n_bootstrap, rng=rng)
    return Estimate(float(boot.estimate[0]), boot.ci(0), "mean over windows, article bootstrap CI")


def _rounded(ci: ConfidenceInterval) -> ConfidenceInterval:
    """The interval at the 1e-7 resolution of float32 cosines."""
    return ConfidenceInterval(float(np.round(ci.low, 7)), float(np.round(ci.high, 7)), ci.level)


def lag_matched_stats(st: SplitStats, k: int, n_permutations: int, n_bootstrap: int,
                      rng: np.random.Generator) -> tuple[LagMatched, ...]:
    """Forward - backward cosine at equal lags: article-bootstrap CI, and an article sign-flip p for pooled pivots."""
    specs = lag_specs(k)
    if st.delta.size == 0:
        return ()
    # cosines from float32 dot products carry ~1e-7 rounding error; rounding the differences keeps
    # that noise from being reported (and tested) as an asymmetry
    diff = np.round(st.lag_fwd - st.lag_bwd, 7)  # (n, L)
    counts = np.bincount(st.groups, minlength=st.n_groups).astype(float)
    sums = np.zeros((st.n_groups, len(specs)))
    np.add.at(sums, st.groups, diff)
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
            forward=float(st.lag_fwd[:, c].mean()), backward=float(st.lag_bwd[:, c].mean()),
            difference=Estimate(float(observed[c]), _rounded(boot.ci(c)) if boot is not None else None,
                                "article bootstrap CI"),
            pvalue=p, n_resamples=n_permutations if p is not None else 0,
        ))
    return tuple(out)

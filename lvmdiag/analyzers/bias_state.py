"""Mergeable streaming state of the temporal-bias analyzer: per-article additive sums and a fixed-edge histogram.

Each update reads one row block, reduces every window to a few cosines (see
:mod:`lvmdiag.analyzers.window_cosines`) and adds them into per-group sums, so memory is O(groups)
and shards processed separately merge exactly by addition (the torchmetrics pattern).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from lvmdiag.analyzers.baselines import baseline_cosines
from lvmdiag.analyzers.window_cosines import WindowCosines, gram_cosines, lag_cosines, position_cosines, window_cosines
from lvmdiag.errors import InputError
from lvmdiag.stats.resampling import as_rng

if TYPE_CHECKING:  # pragma: no cover
    from lvmdiag.analyzers.bias_results import BiasResult

# Fixed histogram edges for per-window Δ (Δ lies in [-2, 2]); fixed edges let shards merge by
# addition. Quantiles read from it are exact to within one bin width.
DELTA_EDGES = np.linspace(-2.0, 2.0, 801)
DELTA_BIN_WIDTH = float(DELTA_EDGES[1] - DELTA_EDGES[0])
#: "no row known" in the per-group first rows
NO_ROW = np.iinfo(np.int64).max


# ----------------------------------------------------------------------------------------------
# Column layout of the per-group sums
# ----------------------------------------------------------------------------------------------
def n_cols(k: int) -> int:
    return 2 * k + 4  # pos (K) | lag (K) | mean_context next, prev | Δ > 0 | Δ²


def derived_columns(k: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Names and linear maps (sums -> numerators, counts -> numerators) of every reported mean.

    Every statistic is a linear combination of the stored sums (plus, for copy-last's cos_prev = 1,
    of the counts), so one bootstrap over articles yields all intervals with the same resamples.
    """
    p = n_cols(k)
    names: list[str] = []
    a_cols: list[np.ndarray] = []
    c_cols: list[float] = []

    def add(name: str, weights: dict[int, float], count_weight: float = 0.0) -> None:
        col = np.zeros(p)
        for j, w in weights.items():
            col[j] = w
        names.append(name)
        a_cols.append(col)
        c_cols.append(count_weight)

    for i in range(k):
        add(f"pos_{i}", {i: 1.0})
    add("delta", {k - 1: 1.0, 0: -1.0})
    for lag in range(1, k + 1):
        add(f"lag_{lag}", {k + lag - 1: 1.0})
    add("copy_last.cos_next", {k - 1: 1.0})
    add("copy_last.cos_prev", {}, 1.0)
    add("copy_last.margin", {k - 1: 1.0}, -1.0)
    add("mean_context.cos_next", {2 * k: 1.0})
    add("mean_context.cos_prev", {2 * k + 1: 1.0})
    add("mean_context.margin", {2 * k: 1.0, 2 * k + 1: -1.0})
    add("share_positive", {2 * k + 2: 1.0})
    return names, np.stack(a_cols, axis=1), np.asarray(c_cols)


def numerators(sums: np.ndarray, counts: np.ndarray, k: int) -> tuple[list[str], np.ndarray]:
    names, a, c = derived_columns(k)
    return names, sums @ a + counts[:, None] * c[None, :]


# ----------------------------------------------------------------------------------------------
# Streaming state
# ----------------------------------------------------------------------------------------------
class TemporalBiasState:
    """Mergeable sufficient statistics of the temporal-bias analysis.

    Per group (article) g it keeps ``counts[g]`` (valid windows) and ``sums[g]`` (sums over those
    windows of cos(c_i, t) for each position i, of the window-mean cos at each lag 1..K, of the
    mean-context predictor's cos_next and cos_prev, of [Δ > 0] and of Δ²), plus one global fixed-edge
    histogram of Δ and the number of excluded rows. All are sums, so ``merge`` is addition and
    shards merged in any order equal one pass (up to float rounding).

    Group labels are dense non-negative integer codes (0..G-1: memory grows with the largest code);
    states that are merged must use the same coding.
    """

    def __init__(self, k: int | None = None) -> None:
        self.k = k
        self.d: int | None = None
        self.reset()

    def reset(self) -> None:
        """Forget everything accumulated (keeps K)."""
        self._counts = np.zeros(0, dtype=np.float64)
        self._first = np.zeros(0, dtype=np.int64)  # first valid row per group (NO_ROW: none or unknown)
        self._sums = np.zeros((0, n_cols(self.k)) if self.k else (0, 0), dtype=np.float64)
        self.hist = np.zeros(DELTA_EDGES.size - 1, dtype=np.int64)
        self.n_excluded = 0
        self.n_groups_seen = 0

    # -- accessors -------------------------------------------------------------------------
    @property
    def counts(self) -> np.ndarray:
        """(G,) number of valid windows per group code."""
        return self._counts[: self.n_groups_seen]

    @property
    def sums(self) -> np.ndarray:
        """(G, 2K+4) per-group sums (see the class docstring for the columns)."""
        return self._sums[: self.n_groups_seen]

    @property
    def first_rows(self) -> np.ndarray:
        """(G,) the first valid row of each group in its split (``NO_ROW`` where rows were not given)."""
        return self._first[: self.n_groups_seen]

    @property
    def n_windows(self) -> int:
        return int(round(self.counts.sum()))

    def _ensure_groups(self, n: int) -> None:
        if n <= self._counts.shape[0]:
            return
        cap = max(n, 2 * self._counts.shape[0], 64)
        counts = np.zeros(cap)
        sums = np.zeros((cap, n_cols(self.k)))
        first = np.full(cap, NO_ROW, dtype=np.int64)
        counts[: self._counts.shape[0]] = self._counts
        sums[: self._sums.shape[0]] = self._sums
        first[: self._first.shape[0]] = self._first
        self._counts, self._sums, self._first = counts, sums, first

    def _set_shape(self, k: int, d: int | None) -> None:
        if self.k is None:
            self.k = k
            self._sums = np.zeros((0, n_cols(k)))
        elif self.k != k:
            raise InputError(f"window length K differs: this state has K={self.k}, the new data K={k}.")
        if d is not None:
            if self.d is not None and self.d != d:
                raise InputError(f"vector dimension D differs: this state has D={self.d}, the new data D={d}.")
            self.d = d
        if self.k < 2:
            raise InputError(f"temporal bias needs at least 2 context positions (K >= 2); got K={self.k}.")

    # -- torchmetrics-style API -------------------------------------------------------------
    def update(
        self,
        contexts_block: np.ndarray,
        targets_block: np.ndarray,
        groups_block: np.ndarray,
        valid_block: np.ndarray | None = None,
        start: int | None = None,
    ) -> None:
        """Add a block of windows: contexts (B, K, D), targets (B, D), group codes (B,), optional valid mask (B,).

        Rows with a zero or non-finite vector, or ``valid_block`` False, are excluded and counted.
        ``start``: the block's first row in its split, so each group's first row is known (to name and
        quote the articles with the most extreme Δ).
        """
        contexts = np.asarray(contexts_block, dtype=np.float32)
        targets = np.asarray(targets_block, dtype=np.float32)
        groups = np.asarray(groups_block)
        if contexts.ndim != 3 or targets.shape != (contexts.shape[0], contexts.shape[2]):
            raise InputError(
                f"a block needs contexts (B, K, D) and targets (B, D); got {contexts.shape} and {targets.shape}."
            )
        if groups.shape != (contexts.shape[0],) or not np.issubdtype(groups.dtype, np.integer):
            raise InputError(f"group labels must be (B,) integers; got {groups.shape} {groups.dtype}.")
        self._set_shape(contexts.shape[1], contexts.shape[2])
        if contexts.shape[0] == 0:
            return
        self._add(window_cosines(contexts, targets), groups, valid_block, start)

    def update_gram(
        self, gram_block: np.ndarray, groups_block: np.ndarray, d: int, valid_block: np.ndarray | None = None,
        start: int | None = None,
    ) -> None:
        """:meth:`update` from the windows' float32 Gram matrices (B, K+1, K+1), target last, instead of
        their vectors (``d`` is the vector dimension): the same sums when the products are the same."""
        gram = np.asarray(gram_block)
        groups = np.asarray(groups_block)
        if gram.ndim != 3 or gram.shape[1] != gram.shape[2] or gram.shape[1] < 2:
            raise InputError(f"a Gram block needs shape (B, K+1, K+1); got {gram.shape}.")
        if groups.shape != (gram.shape[0],) or not np.issubdtype(groups.dtype, np.integer):
            raise InputError(f"group labels must be (B,) integers; got {groups.shape} {groups.dtype}.")
        self._set_shape(gram.shape[1] - 1, int(d))
        if gram.shape[0] == 0:
            return
        self._add(gram_cosines(gram), groups, valid_block, start)

    def _add(self, wc: WindowCosines, groups: np.ndarray, valid_block: np.ndarray | None,
             start: int | None = None) -> None:
        """Add a block's cosines into the per-group sums (rows not ``ok`` or not valid are counted as excluded)."""
        if groups.min() < 0:
            raise InputError("group labels must be non-negative integer codes.")
        ok = wc.ok if valid_block is None else wc.ok & np.asarray(valid_block, dtype=bool)
        self.n_excluded += int(ok.size - ok.sum())
        if not ok.any():
            return
        k = self.k
        pos = position_cosines(wc)[ok]
        lag = lag_cosines(wc)[ok]
        mc_next, mc_prev = baseline_cosines(wc)["mean_context"]
        delta = pos[:, k - 1] - pos[:, 0]
        cols = np.concatenate(
            [pos, lag, mc_next[ok, None], mc_prev[ok, None], (delta > 0)[:, None], (delta * delta)[:, None]],
            axis=1,
        )
        # reduce to the groups present in this block first, so the cost per block does not grow
        # with the largest label (labels can reach N when every window is its own unit)
        uniq, local = np.unique(groups[ok].astype(np.int64), return_inverse=True)
        local = local.reshape(-1)
        self._ensure_groups(int(uniq[-1]) + 1)
        self.n_groups_seen = max(self.n_groups_seen, int(uniq[-1]) + 1)
        self._counts[uniq] += np.bincount(local, minlength=uniq.size)
        if start is not None:
            first = np.full(uniq.size, NO_ROW, dtype=np.int64)
            np.minimum.at(first, local, start + np.flatnonzero(ok))
            self._first[uniq] = np.minimum(self._first[uniq], first)
        for j in range(cols.shape[1]):  # bincount per column: much faster than np.add.at
            self._sums[uniq, j] += np.bincount(local, weights=cols[:, j], minlength=uniq.size)
        bins = np.clip(((delta - DELTA_EDGES[0]) / DELTA_BIN_WIDTH).astype(np.int64), 0, self.hist.size - 1)
        self.hist += np.bincount(bins, minlength=self.hist.size)

    def merge(self, other: "TemporalBiasState") -> "TemporalBiasState":
        """Add ``other``'s sums into this state (in place) and return it."""
        if other.k is None:
            return self
        self._set_shape(other.k, other.d)
        self._ensure_groups(other.n_groups_seen)
        self.n_groups_seen = max(self.n_groups_seen, other.n_groups_seen)
        self._counts[: other.n_groups_seen] += other.counts
        self._sums[: other.n_groups_seen] += other.sums
        self._first[: other.n_groups_seen] = np.minimum(self._first[: other.n_groups_seen], other.first_rows)
        self.hist += other.hist
        self.n_excluded += other.n_excluded
        return self

    def compute(
        self,
        *,
        n_resamples: int = 1000,
        level: float = 0.95,
        rng: np.random.Generator | int | None = 0,
        group_method: str = "given",
        group_note: str = "",
        name: str = "",
        source: str = "",
    ) -> "BiasResult":
        """Turn the sums into a :class:`BiasResult` (bootstrap intervals over groups)."""
        from lvmdiag.analyzers.bias_results import result_from_state

        return result_from_state(self, n_resamples, level, as_rng(rng), group_method, group_note, name, source)


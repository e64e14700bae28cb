"""Assign whole groups (articles) to splits so that window counts match target ratios, per stratum.

Two seeded greedy passes over groups sorted by size (windows) descending, each followed by a
polishing step, and a rule choosing between them:

* Strata are processed one after another (strata with larger articles first, so the last stratum,
  holding the smallest articles, makes the final fine adjustments). The deficit of split s is
  ``r_s * (windows of the strata seen so far, this one included) - windows assigned to s``: the
  target grows stratum by stratum, so a stratum matches its own shares and absorbs the small
  residual the previous strata left.
* Largest-deficit pass: each group goes to the split with the largest deficit.
* Proportional pass: each group goes, among the splits it fits into (deficit >= half its size), to
  the one furthest behind relative to its target, so large articles are shared out in proportion
  (without it, the largest articles all land in the largest split first).
* Polishing (:func:`_polish`): inside each stratum, single moves or pairwise swaps between the split
  most short of its share and the one most over it, while the whole-data deviation stays within
  half the tolerance.
* The proportional result is kept unless it exceeds the stated bound, or misses (whole data plus
  worst stratum) by more than 0.001 (0.1 percentage point) where the largest-deficit result does at
  least twice better (heavy-tailed sizes with few articles).
* Ties (equal sizes, equal deficits) are broken by seeded random keys: a seed fixes the result.

Bound (the tolerance we state and verify): let x_max be the largest group and T the total windows.
For every split s, ``|windows_s - r_s T| <= x_max``. For the largest-deficit pass: the chosen split
has the largest deficit, at least the mean R/S >= x/S (R = windows not yet assigned, including the
group x being placed), so a deficit never falls below x/S - x = -x(1 - 1/S), and a split with a
negative deficit is never chosen again (some deficit is positive while R > 0). For the positive side,
when split v last received a group x_v its deficit was the largest, and deficits only shrink, so
every final deficit d_s <= d_v + x_v for each v; summing over v with sum d = 0 gives
d_s <= mean_v x_v <= x_max. (This needs every split to receive a group, which holds whenever S <= 3
and in any realistic input.) Polishing keeps the deviation within max(x_max / 2, its value before);
the proportional pass is used only when it satisfies the bound; and the writer verifies the bound on
the files read back regardless. Per stratum h the share error is reported, not guaranteed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.errors import InputError
from lvmdiag.results import Result, fmt, md_table
from lvmdiag.stats.resampling import as_rng


@dataclass(frozen=True)
class Assignment(Result):
    """Which split every group went to, and how close the window shares came to the targets.

    Attributes
    ----------
    split_of_group : (G,) int64 split index of each group
    sizes : (G,) int64 windows per group
    strata : (G,) int64 stratum code per group (0 when unstratified)
    ratios : target share per split (sums to 1)
    achieved : achieved window share per split
    tolerance : stated bound on ``|achieved - ratio|`` per split (x_max / T)
    stratum_shares : (H, S) achieved share of each split within each stratum
    stratum_sizes : (H,) windows per stratum
    method : which greedy pass was kept ("proportional" or "largest-deficit", see :func:`assign_groups`)
    """

    split_of_group: np.ndarray
    sizes: np.ndarray
    strata: np.ndarray
    ratios: tuple[float, ...]
    achieved: tuple[float, ...]
    tolerance: float
    stratum_shares: np.ndarray
    stratum_sizes: np.ndarray
    method: str = "largest-deficit"

    @property
    def max_deviation(self) -> float:
        """Largest |achieved - target| over splits (whole data)."""
        return float(np.max(np.abs(np.asarray(self.achieved) - np.asarray(self.ratios))))

    @property
    def max_stratum_deviation(self) -> float:
        """Largest |share - target| over strata and splits."""
        if self.stratum_shares.size == 0:
            return 0.0
        return float(np.max(np.abs(self.stratum_shares - np.asarray(self.ratios)[None, :])))

    @property
    def within_tolerance(self) -> bool:
        return self.max_deviation <= self.tolerance + 1e-12

    def to_markdown(self) -> str:
        rows = [
            [i, fmt(r, 4), fmt(a, 4), fmt(a - r, 4)] for i, (r, a) in enumerate(zip(self.ratios, self.achieved))
        ]
        return md_table(["split", "target", "achieved", "difference"], rows) + (
            f"\n\nTolerance (largest article / total windows): {fmt(self.tolerance, 4)}; "
            f"worst per-stratum deviation {fmt(self.max_stratum_deviation, 4)}."
        )


def _ratios_iv(ratios: tuple[float, ...] | list[float]) -> np.ndarray:
    """Validate split ratios: at least two, all > 0, summing to 1 (within 1e-6)."""
    r = np.asarray(ratios, dtype=np.float64)
    if r.ndim != 1 or r.size < 2:
        raise InputError(f"ratios must list at least two split shares, e.g. 0.8,0.1,0.1; got {np.ravel(r).tolist()}.")
    if not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise InputError(f"every ratio must be a positive number; got {r.tolist()}.")
    if abs(r.sum() - 1.0) > 1e-6:
        raise InputError(f"ratios must sum to 1; got {r.tolist()} (sum {r.sum():.6g}).")
    return r / r.sum()


def stratum_shares(
    sizes: np.ndarray, strata: np.ndarray, split_of_group: np.ndarray, n_splits: int
) -> tuple[np.ndarray, np.ndarray]:
    """(H, S) window share of each split within each stratum, and (H,) windows per stratum.

    Strata codes are taken as dense 0..H-1 (H = max code + 1); empty strata get NaN shares.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    strata = np.asarray(strata, dtype=np.int64)
    h = int(strata.max()) + 1 if strata.size else 0
    table = np.zeros((h, n_splits))
    np.add.at(table, (strata, np.asarray(split_of_group, dtype=np.int64)), sizes)
    totals = table.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = table / totals[:, None]
    return shares, totals.astype(np.int64)


def assign_groups(
    sizes: np.ndarray,
    ratios: tuple[float, ...] | list[float],
    strata: np.ndarray | None = None,
    rng: np.random.Generator | int | None = 0,
    polish: bool = True,
) -> Assignment:
    """Assign each group to a split so that window shares match ``ratios`` within every stratum.

    Parameters
    ----------
    sizes : (G,) windows per group (article); every entry >= 1
    ratios : target share of windows per split, positive, summing to 1
    strata : (G,) integer stratum code per group, or None for one stratum
    rng : seed or generator; fixes the tie-breaking (same seed, same assignment)
    polish : after the greedy pass, swap articles between splits inside each stratum to bring the
        stratum's shares closer to the ratios (the whole-data deviation is kept below half the tolerance)

    Returns
    -------
    Assignment
        ``split_of_group`` (G,), the achieved shares, the stated tolerance ``max(sizes) / sum(sizes)``
        and per-stratum shares. See the module docstring for why the tolerance holds.
    """
    r = _ratios_iv(ratios)
    sizes = np.asarray(sizes)
    if sizes.ndim != 1 or sizes.size == 0:
        raise InputError(f"need at least one group to assign; got sizes of shape {sizes.shape}.")
    if np.any(sizes < 1):
        raise InputError("every group must hold at least one window.")
    sizes = sizes.astype(np.int64)
    g = sizes.size
    if strata is None:
        strata = np.zeros(g, dtype=np.int64)
    strata = np.asarray(strata, dtype=np.int64)
    if strata.shape != (g,):
        raise InputError(f"strata must have one code per group ({g}); got shape {strata.shape}.")
    _, strata = np.unique(strata, return_inverse=True)  # dense codes 0..H-1
    strata = strata.astype(np.int64).ravel()
    rng = as_rng(rng)
    n_splits = r.size
    tie_key = rng.random(g)  # random order among equal sizes
    seeds = rng.integers(0, 2**63, size=2)
    total = float(sizes.sum())
    tolerance = float(sizes.max() / total)

    candidates = {}
    for method, seed in zip(("proportional", "largest-deficit"), seeds):
        split_of_group = _greedy(sizes, strata, r, tie_key, np.random.default_rng(seed), proportional=method == "proportional")
        if polish:
            _polish(sizes, strata, split_of_group, r, budget=0.5 * float(sizes.max()))
        candidates[method] = split_of_group

    def score(split_of_group: np.ndarray) -> tuple[float, float]:
        shares, _ = stratum_shares(sizes, strata, split_of_group, n_splits)
        glob = np.abs(np.bincount(split_of_group, weights=sizes, minlength=n_splits) / total - r).max()
        return float(glob), float(np.nanmax(np.abs(shares - r)))

    g_prop, s_prop = score(candidates["proportional"])
    g_pure, s_pure = score(candidates["largest-deficit"])
    # The proportional pass spreads large articles over the splits in proportion (so even
    # unmeasured size effects are balanced); keep it unless it breaks the stated bound, or misses
    # by more than 0.1 percentage point where the pure pass does at least twice better.
    j_prop, j_pure = g_prop + s_prop, g_pure + s_pure
    use_pure = g_prop > tolerance or (j_prop > 0.001 and j_pure < 0.5 * j_prop)
    method = "largest-deficit" if use_pure else "proportional"
    split_of_group = candidates[method]

    assigned_arr = np.bincount(split_of_group, weights=sizes, minlength=n_splits)
    achieved = tuple(float(a / total) for a in assigned_arr)
    shares, st_sizes = stratum_shares(sizes, strata, split_of_group, n_splits)
    return Assignment(
        split_of_group=split_of_group,
        sizes=sizes,
        strata=strata,
        ratios=tuple(float(x) for x in r),
        achieved=achieved,
        tolerance=tolerance,
        stratum_shares=shares,
        stratum_sizes=st_sizes,
        method=method,
    )


def _greedy(
    sizes: np.ndarray,
    strata: np.ndarray,
    r: np.ndarray,
    tie_key: np.ndarray,
    rng: np.random.Generator,
    proportional: bool,
) -> np.ndarray:
    """One greedy pass over groups (strata in order, sizes descending); returns the split of each group.

    ``proportional=False``: the split with the largest deficit (the proven bound). ``True``: among
    splits the group fits into (deficit >= half its size) the one furthest behind *relative* to its
    target, so large groups are shared out in proportion to the ratios (as in D'Hondt apportionment);
    the largest deficit when it fits nowhere.
    """
    g = sizes.size
    n_splits = r.size
    h = int(strata.max()) + 1
    # Strata with larger articles first; the last stratum (smallest articles) finishes the job.
    mean_size = np.bincount(strata, weights=sizes, minlength=h) / np.bincount(strata, minlength=h)
    stratum_order = np.lexsort((np.arange(h), -mean_size))
    group_order = np.lexsort((tie_key, -sizes, np.argsort(stratum_order)[strata]))
    stratum_total = np.bincount(strata, weights=sizes, minlength=h)

    split_of_group = np.empty(g, dtype=np.int64)
    assigned = [0.0] * n_splits
    ratios_list = [float(x) for x in r]
    seen_total = 0.0
    current = -1
    sizes_list = sizes.tolist()
    strata_list = strata.tolist()
    splits = range(n_splits)
    for i in group_order.tolist():
        st = strata_list[i]
        if st != current:
            current = st
            seen_total += float(stratum_total[st])
        deficits = [ratios_list[s] * seen_total - assigned[s] for s in splits]
        x = sizes_list[i]
        score = deficits
        if proportional:
            fits = [deficits[s] >= 0.5 * x for s in splits]
            if any(fits):
                score = [deficits[s] / ratios_list[s] if fits[s] else -np.inf for s in splits]
        best = max(score)
        # exact ties happen (e.g. equal targets); break them with the seeded generator
        tied = [s for s in splits if score[s] >= best - 1e-9 * max(seen_total, 1.0)]
        s = tied[0] if len(tied) == 1 else tied[int(rng.integers(len(tied)))]
        split_of_group[i] = s
        assigned[s] += x
    return split_of_group


def plain_group_split(
    sizes: np.ndarray,
    ratios: tuple[float, ...] | list[float],
    strata: np.ndarray | None = None,
    rng: np.random.Generator | int | None = 0,
) -> Assignment:
    """The baseline users reach for: shuffle groups and cut by *group count* (as GroupShuffleSplit does).

    Used in reports and tests to show what stratified, window-weighted assignment buys.
    """
    r = _ratios_iv(ratios)
    sizes = np.asarray(sizes).astype(np.int64)
    g = sizes.size
    rng = as_rng(rng)
    perm = rng.permutation(g)
    cuts = np.round(np.cumsum(r) * g).astype(np.int64)
    split_of_group = np.empty(g, dtype=np.int64)
    split_of_group[perm] = np.searchsorted(cuts, np.arange(g), side="right")
    strata = np.zeros(g, np.int64) if strata is None else np.unique(np.asarray(strata), return_inverse=True)[1].ravel()
    total = float(sizes.sum())
    achieved = tuple(float(sizes[split_of_group == s].sum() / total) for s in range(r.size))
    shares, st_sizes = stratum_shares(sizes, strata, split_of_group, r.size)
    return Assignment(
        split_of_group, sizes, strata.astype(np.int64), tuple(float(x) for x in r), achieved,
        float(sizes.max() / total), shares, st_sizes, "plain group shuffle",
    )


def _polish(
    sizes: np.ndarray,
    strata: np.ndarray,
    split_of_group: np.ndarray,
    r: np.ndarray,
    budget: float,
    max_rounds: int = 200,
) -> None:
    """Improve per-stratum shares in place by moving or swapping one article at a time.

    In stratum h let d_s = r_s T_h - (windows of h in s). Take the split s most short of its share
    and the split u most over it; moving article a from u to s and article b (or nothing) back
    shifts delta = x_a - x_b windows, and |d_s| + |d_u| falls exactly when 0 < delta < 2 min(d_s, -d_u).
    The best delta (closest to min(d_s, -d_u)) is found by binary search over the sorted sizes of s.
    A step is taken only if every whole-data deficit stays within ``budget`` windows (half the
    stated tolerance, or the current value if larger), so polishing never breaks the global bound.
    """
    n_splits = r.size
    total_dev = r * float(sizes.sum()) - np.bincount(split_of_group, weights=sizes, minlength=n_splits)
    limit = max(budget, float(np.abs(total_dev).max()))
    for h in range(int(strata.max()) + 1):
        members = np.flatnonzero(strata == h)
        if members.size < 2:
            continue
        x = sizes[members].astype(np.float64)
        where = split_of_group[members].copy()
        t_h = float(x.sum())
        for _ in range(max_rounds):
            d = r * t_h - np.bincount(where, weights=x, minlength=n_splits)
            # pairs (short s, over u), most to gain first; the first one with a usable step wins
            pairs = sorted(
                ((min(d[a], -d[b]), a, b) for a in range(n_splits) for b in range(n_splits) if d[a] > 0 > d[b]),
                reverse=True,
            )
            moved = False
            for m, s_short, u_over in pairs:
                if m < 0.5:  # integer window counts: nothing left to gain
                    break
                step_ = _best_step(x, where, s_short, u_over, m)
                if step_ is None:
                    continue
                a, b, step = step_
                new_dev = total_dev.copy()
                new_dev[s_short] -= step
                new_dev[u_over] += step
                if np.abs(new_dev).max() > limit + 1e-9:
                    continue
                where[a] = s_short
                if b >= 0:
                    where[b] = u_over
                total_dev = new_dev
                moved = True
                break
            if not moved:
                break
        split_of_group[members] = where


def _best_step(x: np.ndarray, where: np.ndarray, s: int, u: int, m: float) -> tuple[int, int, float] | None:
    """Best move of one article from split u to s, optionally swapping one back from s to u.

    Returns (article moved to s, article moved to u or -1, windows shifted) with the shift closest
    to ``m`` inside the improving range (0, 2m), or None when no move or swap improves.
    """
    in_u = np.flatnonzero(where == u)
    if in_u.size == 0:
        return None
    in_s = np.flatnonzero(where == s)
    order = np.argsort(x[in_s], kind="stable")
    back = np.r_[0.0, x[in_s][order]]  # 0 = a plain move
    back_idx = np.r_[-1, in_s[order]]
    want = x[in_u] - m  # ideal size of the article sent back
    if back.size > 1:
        pos = np.clip(np.searchsorted(back, want), 1, back.size - 1)
        cand = np.stack([pos - 1, pos], axis=1)  # (n_u, 2) neighbours of the ideal size
    else:
        cand = np.zeros((in_u.size, 1), dtype=np.int64)
    delta = x[in_u][:, None] - back[cand]
    err = np.abs(delta - m)
    err[(delta <= 0) | (delta >= 2 * m)] = np.inf
    flat = int(np.argmin(err))
    if not np.isfinite(err.flat[flat]):
        return None
    i_u, j = divmod(flat, cand.shape[1])
    return int(in_u[i_u]), int(back_idx[cand[i_u, j]]), float(delta[i_u, j])

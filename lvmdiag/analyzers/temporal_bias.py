"""Temporal bias of next-chunk windows: position profile, Δ, lag profile, trivial predictors, split differences.

The analyzer streams row blocks once and keeps only additive per-article sums (torchmetrics-style
state: ``update``, ``merge``, ``compute``), so shards processed separately merge exactly and memory
is O(articles), not O(windows). Every mean is a ratio of sums over windows; its confidence interval
comes from resampling whole articles (overlapping windows of one article are not independent).

Δ = cos(c_last, t) − cos(c_0, t) measures how much more the nearest context chunk resembles the
target than the farthest one: a lag/locality gradient. Reversing every article maps each window's
pairs onto pairs at the same lags, so Δ is unchanged: it cannot tell forward from backward.
"""


from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from lvmdiag.analyzers._readahead import ReadAhead
from lvmdiag.analyzers.bias_results import (
    name_extremes,
    BASELINE_CAVEAT,
    DIRECTION_CAVEAT,
    QUANTILES,
    ArticleDelta,
    BiasComparison,
    BiasResult,
    DeltaDistribution,
)
from lvmdiag.analyzers.bias_state import (
    DELTA_BIN_WIDTH,
    DELTA_EDGES,
    TemporalBiasState,
    derived_columns,
    numerators,
)
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.data.store_scan import window_gram_of
from lvmdiag.errors import InputError
from lvmdiag.results import Estimate, TestResult
from lvmdiag.stats.resampling import as_rng, benjamini_hochberg, group_difference_test, named_stream, stream_root
from lvmdiag.stats.sequential import floor_note, resolve_cap

ProgressCallback = Callable[[int, int], None]

# Differences smaller than this are float32 rounding of the per-window cosines, not effects.
NUMERICAL_RESOLUTION = 1e-6
GROUP_METHODS = ("given", "recovered", "contiguous-blocks")

# ----------------------------------------------------------------------------------------------
# One-shot entry points
# ----------------------------------------------------------------------------------------------
def _iv(n_resamples: int, level: float, block_rows: int, group_method: str) -> None:
    """Validate the shared arguments of analyze_bias / compare_bias."""
    if int(n_resamples) < 1:
        raise InputError(f"n_resamples must be >= 1; got {n_resamples}.")
    if not 0.0 < float(level) < 1.0:
        raise InputError(f"level must lie in (0, 1); got {level}.")
    if int(block_rows) < 1:
        raise InputError(f"block_rows must be >= 1; got {block_rows}.")
    if group_method not in GROUP_METHODS:
        raise InputError(f"group_method must be one of {', '.join(GROUP_METHODS)}; got {group_method!r}.")


def _check_labels(seqs: SequenceSet, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (seqs.n,):
        raise InputError(f"groups for {seqs.name} must have one label per window ({seqs.n}); got shape {labels.shape}.")
    return labels


def _accumulate(
    seqs: SequenceSet,
    codes: np.ndarray,
    block_rows: int,
    progress: ProgressCallback | None,
    done: int = 0,
    total: int | None = None,
) -> TemporalBiasState:
    """One streaming pass over ``seqs`` in row blocks (the only place D-dimensional data is read).

    Windows of a store whose reader kept their dot products (:func:`lvmdiag.data.store_scan.window_gram_of`)
    are taken from those, in the same blocks: identical sums, and the file is not decoded a second time.
    """
    state = TemporalBiasState(seqs.k)
    total = seqs.n if total is None else total
    valid = None if seqs.valid is None else np.asarray(seqs.valid, dtype=bool)
    state._set_shape(seqs.k, seqs.d)
    gram = window_gram_of(seqs)
    if gram is not None:  # a store whose validation pass kept every window's dot products: no vector read
        for start in range(0, seqs.n, block_rows):
            stop = min(start + block_rows, seqs.n)
            state.update_gram(gram.block(start, stop), codes[start:stop], seqs.d, None if valid is None else valid[start:stop],
                              start=start)
            if progress is not None:
                progress(done + stop, total)
        return state
    with ReadAhead(seqs.contexts, seqs.targets) as ahead:
        ahead.advise(0, min(block_rows, seqs.n))
        for start, ctx, tgt in seqs.iter_blocks(block_rows):
            stop = start + ctx.shape[0]
            ahead.advise(stop, min(stop + block_rows, seqs.n))  # the disk reads the next block meanwhile
            state.update(ctx, tgt, codes[start:stop], None if valid is None else valid[start:stop], start=start)
            if progress is not None:
                progress(done + stop, total)
    return state


def _resolve(
    seqsets: list[SequenceSet], block_size: int | None, progress: ProgressCallback | None
) -> tuple[list[np.ndarray], str, str]:
    from lvmdiag.data.groups import resolve_groups  # the data layer decides given / recovered / blocks

    ga = resolve_groups(seqsets, block_size=block_size, progress=progress)
    return [np.asarray(lab, dtype=np.int64) for lab in ga.labels], ga.method, ga.note


def analyze_bias(
    seqs: SequenceSet,
    *,
    groups: np.ndarray | None = None,
    group_method: str = "given",
    group_note: str = "",
    n_resamples: int = 1000,
    level: float = 0.95,
    rng: np.random.Generator | int | None = 0,
    block_rows: int = 8192,
    block_size: int | None = None,
    progress: ProgressCallback | None = None,
) -> BiasResult:
    """Temporal bias of one sequence set, streamed in row blocks.

    Parameters
    ----------
    seqs : the windows (contexts may be memory-mapped; at most ``block_rows`` rows are loaded at once)
    groups : (N,) article label per window (any integers), or None to let
        :func:`lvmdiag.data.groups.resolve_groups` choose given ids, recovered ids or contiguous blocks
    group_method : how ``groups`` were obtained ("given", "recovered", "contiguous-blocks"), for the report
    group_note : one sentence on the grouping, shown in the report
    n_resamples, level : cluster-bootstrap size and CI level
    rng : seed or generator (the only randomness)
    block_rows : rows per streamed block (memory ~ block_rows * (K+1) * D * 4 bytes)
    block_size : contiguous-block size passed to resolve_groups when no ids exist
    progress : optional ``callback(done_rows, total_rows)``

    Returns
    -------
    BiasResult
        position_profile, delta, share_positive, per_sequence_delta, per_article_delta, lag_profile,
        baselines (copy_last, mean_context), with counts and the grouping used.
    """
    _iv(n_resamples, level, block_rows, group_method)
    if groups is None:
        labels, group_method, group_note = _resolve([seqs], block_size, progress)
        codes = labels[0]
    else:
        _, codes = np.unique(_check_labels(seqs, groups), return_inverse=True)
    state = _accumulate(seqs, codes.astype(np.int64).ravel(), int(block_rows), progress)
    return name_extremes(state.compute(
        n_resamples=int(n_resamples),
        level=float(level),
        rng=named_stream(stream_root(rng), "bootstrap"),  # the stream compare_bias gives its reference split
        group_method=group_method,
        group_note=group_note,
        name=seqs.name,
        source=seqs.source,
    ), seqs)


def _difference_columns(k: int) -> tuple[list[str], list[str]]:
    """(internal column names, report labels) of the statistics compared between splits.

    Each statistic appears once: lag K is the single pair (c_0, t), i.e. cos(c_0, t), and the
    copy-last margin is cos(c_last, t) - 1, so their differences equal those rows exactly. Listing
    them again would repeat a finding and inflate the Benjamini-Hochberg family.
    """
    cols = [f"pos_{i}" for i in range(k)] + ["delta"] + [f"lag_{lag}" for lag in range(1, k)]
    cols += ["mean_context.margin"]
    labels = [f"cos(c_{i}, t)" for i in range(k)] + ["Δ = cos(c_last,t) − cos(c_0,t)"]
    labels += ["adjacent coherence (lag 1)" if lag == 1 else f"lag {lag} cos" for lag in range(1, k)]
    labels += ["mean-of-context margin"]
    return cols, labels


def compare_bias(
    splits: dict[str, SequenceSet],
    *,
    groups: dict[str, np.ndarray] | None = None,
    group_method: str = "given",
    group_note: str = "",
    reference: str | None = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    rng: np.random.Generator | int | None = 0,
    block_rows: int = 8192,
    block_size: int | None = None,
    progress: ProgressCallback | None = None,
    n_permutations: int | str = "auto",
    alpha: float = 0.05,
) -> BiasComparison:
    """Temporal bias of every split and the difference of each statistic from the reference split.

    Parameters
    ----------
    splits : name -> SequenceSet (e.g. {"train": ..., "val": ..., "ood": ...}); same K and D
    groups : name -> (N,) article labels with the same coding across splits (an article with one label
        in two splits is leakage), or None to call :func:`lvmdiag.data.groups.resolve_groups` on all
        splits together (given ids, else ids recovered across the files, else contiguous blocks)
    reference : split that differences are taken against (default "train", else the first split)
    n_resamples, level, rng, block_rows, block_size, progress : as in :func:`analyze_bias`
        (``n_resamples`` bootstrap replicates per interval)
    n_permutations : cap on article permutations per difference test, or "auto" (enough for a lone
        difference among the comparison's family of statistics to reach alpha/m); each test stops
        drawing once it cannot reach ``alpha`` (:mod:`lvmdiag.stats.sequential`)
    alpha : level the permutations are curtailed at (the family of one comparison is BH-adjusted)

    Returns
    -------
    BiasComparison
        results (per split BiasResult), differences (per other split: TestResult per statistic,
        other − reference, stratified cluster-bootstrap CI, article-permutation p, BH-adjusted),
        shared_groups (articles in both splits), notes.
    """
    _iv(n_resamples, level, block_rows, group_method)
    if len(splits) < 2:
        raise InputError(f"compare_bias needs at least 2 splits; got {list(splits)}. Use analyze_bias for one.")
    names = list(splits)
    reference = reference or ("train" if "train" in splits else names[0])
    if reference not in splits:
        raise InputError(f"reference split {reference!r} is not among {names}.")
    shapes = {nm: (s.k, s.d) for nm, s in splits.items()}
    if len(set(shapes.values())) > 1:
        desc = ", ".join(f"{nm} K={k} D={d}" for nm, (k, d) in shapes.items())
        raise InputError(f"splits must share window length K and dimension D; got {desc}.")
    rng = as_rng(rng)
    if groups is None:
        labels, group_method, group_note = _resolve([splits[nm] for nm in names], block_size, progress)
        codes = dict(zip(names, labels))
    else:
        missing = [nm for nm in names if nm not in groups]
        if missing:
            raise InputError(f"groups must hold labels for every split; missing {missing}.")
        raw = [_check_labels(splits[nm], groups[nm]) for nm in names]
        _, inv = np.unique(np.concatenate(raw), return_inverse=True)
        bounds = np.cumsum([0] + [r.size for r in raw])
        codes = {nm: inv[bounds[i] : bounds[i + 1]].astype(np.int64) for i, nm in enumerate(names)}

    total = sum(s.n for s in splits.values())
    states: dict[str, TemporalBiasState] = {}
    done = 0
    for nm in names:
        states[nm] = _accumulate(splits[nm], codes[nm].ravel(), int(block_rows), progress, done, total)
        done += splits[nm].n
    return name_comparison(compare_states(states, {nm: splits[nm].source for nm in names}, reference=reference,
                                          group_method=group_method, group_note=group_note, n_resamples=n_resamples,
                                          level=level, rng=rng, n_permutations=n_permutations, alpha=alpha), splits)


def name_comparison(comparison: BiasComparison, splits: Mapping[str, Any]) -> BiasComparison:
    """Every split's most extreme articles named and quoted (:func:`name_extremes`)."""
    from dataclasses import replace

    return replace(comparison, results={nm: name_extremes(r, splits[nm]) if nm in splits else r
                                        for nm, r in comparison.results.items()})


def compare_states(
    states: dict[str, TemporalBiasState],
    sources: dict[str, str],
    *,
    reference: str,
    group_method: str,
    group_note: str,
    n_resamples: int,
    level: float,
    rng: np.random.Generator,
    n_permutations: int | str = "auto",
    alpha: float = 0.05,
) -> BiasComparison:
    """The finalize phase of :func:`compare_bias`: per-split results and differences from merged states.

    ``states`` maps split name -> merged state (article codes shared by every split); ``sources`` names
    each split's file for the report. O(articles) work: no vector is read here.
    """
    names = list(states)
    # one named stream per split and purpose: adding a split (an ood file) changes no other split's draws
    root = stream_root(rng)
    results = {
        nm: states[nm].compute(
            n_resamples=n_resamples, level=level, group_method=group_method,
            rng=named_stream(root, "bootstrap") if nm == reference else named_stream(root, "bootstrap", nm),
            group_note=group_note, name=nm, source=sources[nm],
        )
        for nm in names
    }

    k = states[reference].k
    col_names, col_labels = _difference_columns(k)
    all_names, _, _ = derived_columns(k)
    col_idx = [all_names.index(c) for c in col_names]
    ref = states[reference]
    ref_present = ref.counts > 0
    ref_num = numerators(ref.sums[ref_present], ref.counts[ref_present], k)[1][:, col_idx]
    differences: dict[str, tuple[TestResult, ...]] = {}
    shared: dict[str, int] = {}
    notes: list[str] = []
    for nm in names:
        if nm == reference:
            continue
        st = states[nm]
        present = st.counts > 0
        if group_method != "contiguous-blocks":
            m = min(present.size, ref_present.size)
            shared[nm] = int((present[:m] & ref_present[:m]).sum())
            if shared[nm]:
                notes.append(
                    f"{shared[nm]} of {int(present.sum())} {nm} article ids also occur in {reference}: the same "
                    "articles in both splits (leakage; the leakage check says whether their content is shared) or ids "
                    f"numbered per file. For the {nm} − {reference} differences each (article, split) pair is one "
                    "resampling unit."
                )
        num = numerators(st.sums[present], st.counts[present], k)[1][:, col_idx]
        # (article, split) is the unit: rows of the two splits are stacked, never merged
        all_num = np.vstack([num, ref_num])
        all_counts = np.r_[st.counts[present], ref.counts[ref_present]]
        in_a = np.r_[np.ones(num.shape[0], bool), np.zeros(ref_num.shape[0], bool)]
        cap = resolve_cap(n_permutations, len(col_labels), alpha)
        fam_note = floor_note(cap, len(col_labels), alpha, f"bias differences {nm} − {reference}")
        if fam_note:
            notes.append(fam_note)
        try:
            gd = group_difference_test(all_num, all_counts, in_a, n_resamples=n_resamples, level=level,
                                       rng=named_stream(root, "difference", nm), n_permutations=cap, alpha=alpha)
        except InputError as exc:
            notes.append(f"{nm} − {reference} differences were not computed: {exc}")
            continue
        # A difference whose whole interval lies within float32 rounding of the cosines (e.g. a
        # statistic that is constant by construction) is no difference: a permutation test on
        # rounding noise would print a meaningless small p.
        below = np.maximum.reduce([np.abs(gd.difference), np.abs(gd.low), np.abs(gd.high)]) < NUMERICAL_RESOLUTION
        pvalues = np.where(below, 1.0, gd.pvalue)
        adjusted = benjamini_hochberg(pvalues)
        unit = "block" if group_method == "contiguous-blocks" else "article"
        differences[nm] = tuple(
            TestResult(
                name=label,
                statistic=float(gd.difference[j]),
                pvalue=float(pvalues[j]),
                effect=Estimate(float(gd.difference[j]), gd.ci(j), f"stratified {unit}-cluster bootstrap"),
                n_resamples=int(gd.n_permutations[j]),
                method=f"{unit}-level permutation" + (" (below float32 resolution: p set to 1)" if below[j] else ""),
                pvalue_adjusted=float(adjusted[j]),
                family=f"bias: {nm} − {reference}",
                family_size=len(col_labels),
                null_value=0.0,
                mc_error=float(gd.mc_error[j]),
                n_resamples_cap=cap,
            )
            for j, label in enumerate(col_labels)
        )
    return BiasComparison(
        results=results,
        reference=reference,
        differences=differences,
        shared_groups=shared,
        group_method=group_method,
        group_note=group_note,
        n_resamples=n_resamples,
        level=level,
        notes=tuple(notes),
    )


__all__ = [
    "BASELINE_CAVEAT", "DELTA_BIN_WIDTH", "DELTA_EDGES", "DIRECTION_CAVEAT", "QUANTILES",
    "ArticleDelta", "BiasComparison", "BiasResult", "DeltaDistribution", "TemporalBiasState",
    "analyze_bias", "compare_bias", "compare_states",
]

"""Pool the inputs of a resplit: load every split, group windows by article (or a key), merge
articles that share a chunk vector, and reduce per-article statistics after the merge."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import InputError
from lvmdiag.resplit.strata import BUILTIN_STRATA, ArticleStats, available_columns, column_values, encode_values


@dataclass(frozen=True)
class Pooled:
    """The inputs as loaded, with names and per-input group labels."""

    names: list[str]
    seqsets: list[SequenceSet]
    paths: list[Path]
    labels: list[np.ndarray]
    n_groups: int
    group_method: str
    group_note: str


def load_inputs(paths: list[Path], k: int, allow_pickle: bool) -> tuple[list[str], list[SequenceSet]]:
    """Load every split of every input (a two-split file contributes both)."""
    from lvmdiag.data.readers import load_split_files
    from lvmdiag.data.validate import check_compatible

    names: list[str] = []
    sets: list[SequenceSet] = []
    for p in paths:
        for name, seq in load_split_files(p, k=k, allow_pickle=allow_pickle).items():
            label = name if name not in names else f"{p.stem}:{name}"
            names.append(label)
            sets.append(seq)
    check_compatible(sets)
    return names, sets


def group_inputs(names: list[str], sets: list[SequenceSet], paths: list[Path], by: str) -> Pooled:
    """Group labels per input: by article (given or recovered ids) or by a metadata key."""
    if by == "article":
        from lvmdiag.data.groups import resolve_groups

        ga = resolve_groups(sets, recover=True)
        if ga.method == "contiguous-blocks":
            raise InputError(
                "cannot resplit by article: the inputs carry no article ids and none could be recovered from "
                "shared chunk vectors (stride-1 windows); provide article ids (rebuilt form, Wikipedia metadata "
                "with --allow-pickle, an article store) or group by a metadata key with --by KEY."
            )
        labels = [np.asarray(lab, dtype=np.int64).ravel() for lab in ga.labels]
        return Pooled(names, sets, paths, labels, int(ga.n_groups), str(ga.method), str(getattr(ga, "note", "")))
    cols = []
    for seq in sets:
        col = column_values(seq, by)
        if col is None:
            avail = ", ".join(available_columns(seq)) or "none"
            hint = " (Wikipedia metadata needs --allow-pickle)" if seq.attrs.get("skipped_keys") else ""
            raise InputError(
                f"--by {by!r}: {seq.source} has no per-window column or metadata key {by!r}{hint}; "
                f"use 'article' or one of: {avail}."
            )
        cols.append(col)
    labels, uniq = encode_values(cols)
    return Pooled(names, sets, paths, labels, int(uniq.size), f"key:{by}", f"windows grouped by the value of {by!r}")


def merge_shared_vectors(
    labels: list[np.ndarray], chunk: list[np.ndarray], ok: list[np.ndarray], n_groups: int
) -> tuple[np.ndarray, int]:
    """Map every group to a merged group: groups sharing any non-zero chunk vector become one.

    Returns (old code -> new dense code, number of groups merged away). Connected components of the
    graph linking groups through identical vectors, so the shared-vector guarantee holds by construction.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    hs, gs = [], []
    for lab, ch, k_ok in zip(labels, chunk, ok):
        rows_g = np.broadcast_to(lab[:, None], ch.shape)
        hs.append(ch[k_ok])
        gs.append(rows_g[k_ok])
    h = np.concatenate(hs) if hs else np.empty(0, np.uint64)
    g = np.concatenate(gs) if gs else np.empty(0, np.int64)
    if h.size == 0:
        return np.arange(n_groups, dtype=np.int64), 0
    order = np.lexsort((g, h))
    h, g = h[order], g[order]
    same = (h[1:] == h[:-1]) & (g[1:] != g[:-1])
    if not same.any():
        return np.arange(n_groups, dtype=np.int64), 0
    a, b = g[:-1][same], g[1:][same]
    graph = coo_matrix((np.ones(a.size), (a, b)), shape=(n_groups, n_groups))
    n_comp, comp = connected_components(graph, directed=False)
    # renumber components by their smallest old code, so codes stay in first-seen order
    first = np.full(n_comp, n_groups, dtype=np.int64)
    np.minimum.at(first, comp, np.arange(n_groups))
    rank = np.empty(n_comp, dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(n_comp)
    return rank[comp].astype(np.int64), int(n_groups - n_comp)


def merge_stats(pre: ArticleStats, remap: np.ndarray, n_groups: int) -> ArticleStats:
    """Per-article statistics after merging groups (sums are additive, so merge by summing)."""
    counts = np.bincount(remap, weights=pre.n_windows, minlength=n_groups).astype(np.int64)
    if np.array_equal(remap, np.arange(remap.size)):
        return pre
    dsum = np.bincount(remap, weights=np.nan_to_num(pre.mean_delta) * pre.n_windows, minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_delta = dsum / np.maximum(counts, 1)
    cent = None
    if pre.centroids is not None:
        cent = np.zeros((n_groups, pre.centroids.shape[1]))
        np.add.at(cent, remap, pre.centroids * pre.n_windows[:, None])
        cent /= np.maximum(counts, 1)[:, None]
    return ArticleStats(counts, mean_delta, cent, dict(pre.columns))


def group_columns(sets: list[SequenceSet], labels: list[np.ndarray], n_groups: int, cols: list[str]) -> dict[str, np.ndarray]:
    """Per-article value of each user column (the value at the article's first window)."""
    out = {}
    for key in cols:
        per_input = []
        for seq in sets:
            col = column_values(seq, key)
            if col is None:
                avail = ", ".join(available_columns(seq)) or "none"
                raise InputError(
                    f"--stratify {key!r}: {seq.source} has no per-window column or metadata key {key!r}; "
                    f"use {', '.join(BUILTIN_STRATA)} or one of: {avail}."
                )
            per_input.append(col)
        values = np.empty(n_groups, dtype=object)
        filled = np.zeros(n_groups, bool)
        for lab, col in zip(labels, per_input):
            uniq, first = np.unique(lab, return_index=True)
            new = ~filled[uniq]
            values[uniq[new]] = np.asarray(col, dtype=object)[first[new]]
            filled[uniq] = True
        try:
            numeric = values.astype(np.float64)
            out[key] = numeric
        except (TypeError, ValueError):
            out[key] = np.asarray([str(v) for v in values], dtype=object)
    return out

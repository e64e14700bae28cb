"""Build stride-1 windows (K context chunks + next chunk) from an article store, never across articles."""

from __future__ import annotations

import numpy as np

from lvmdiag.errors import InputError


def article_order(article_ids: np.ndarray, chunk_index: np.ndarray | None = None) -> np.ndarray:
    """Row order that sorts chunks by (article, chunk); row order within an article when no chunk index."""
    article_ids = np.asarray(article_ids)
    if chunk_index is None:
        return np.argsort(article_ids, kind="stable")
    return np.lexsort((np.asarray(chunk_index), article_ids))


def window_indices(
    article_ids: np.ndarray, k: int, chunk_index: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of every stride-1 window of ``k`` chunks plus target, within each article.

    Returns
    -------
    context_rows : (W, k) int64 rows of the context chunks, in article order
    target_rows : (W,) int64 row of the next chunk
    window_article : (W,) the article id of each window (same dtype as ``article_ids``)

    An article with L chunks yields max(L - k, 0) windows.
    """
    if k < 1:
        raise InputError(f"window length K must be >= 1; got {k}.")
    article_ids = np.asarray(article_ids)
    order = article_order(article_ids, chunk_index)
    sorted_ids = article_ids[order]
    n = sorted_ids.size
    if n == 0:
        return np.empty((0, k), np.int64), np.empty(0, np.int64), sorted_ids[:0]
    # position of each sorted row within its article run
    starts = np.r_[0, np.flatnonzero(sorted_ids[1:] != sorted_ids[:-1]) + 1]
    lengths = np.diff(np.r_[starts, n])
    run_start = np.repeat(starts, lengths)
    run_len = np.repeat(lengths, lengths)
    pos = np.arange(n) - run_start
    first = np.flatnonzero(pos + k < run_len)  # sorted positions where a window starts
    offsets = np.arange(k + 1)
    span = order[first[:, None] + offsets[None, :]]  # (W, k+1) original rows
    return span[:, :k].astype(np.int64), span[:, k].astype(np.int64), sorted_ids[first]

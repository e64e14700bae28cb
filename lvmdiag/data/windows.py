"""Build stride-1 windows (K context chunks + next chunk) from an article store, never across articles."""

from __future__ import annotations

import numpy as np

from lvmdiag.errors import InputError


def unsorted_order(article_ids: np.ndarray, chunk_index: np.ndarray | None = None) -> np.ndarray | None:
    """Row order that sorts chunks by (article, chunk) (row order within an article when no chunk index),
    or None when the rows are in that order already.

    Stores are usually written in (article, chunk) order; checking that is one comparison per row,
    while the stable sort it spares took a tenth of a second per 10^6 rows (the same result: a stable
    sort of sorted keys is the identity).
    """
    article_ids = np.asarray(article_ids)
    if article_ids.size < 2:
        return None
    with np.errstate(invalid="ignore"):
        a, b = article_ids[:-1], article_ids[1:]
        if chunk_index is None:
            in_order = bool(np.all(a <= b))
        else:
            chunk_index = np.asarray(chunk_index)
            in_order = bool(np.all((a < b) | ((a == b) & (chunk_index[:-1] <= chunk_index[1:]))))
    if in_order:
        return None
    if chunk_index is None:
        return np.argsort(article_ids, kind="stable")
    return np.lexsort((chunk_index, article_ids))


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
    order = unsorted_order(article_ids, chunk_index)
    sorted_ids = article_ids if order is None else article_ids[order]
    n = sorted_ids.size
    if n <= k:
        return np.empty((0, k), np.int64), np.empty(0, np.int64), sorted_ids[:0]
    # sorted runs: a window starts at i when the chunk k places on is in the same article
    first = np.flatnonzero(sorted_ids[k:] == sorted_ids[:-k])
    span = first[:, None] + np.arange(k + 1, dtype=np.int64)  # (W, k+1) sorted positions
    if order is not None:
        span = order[span]  # original rows
    return np.ascontiguousarray(span[:, :k], dtype=np.int64), span[:, k].astype(np.int64), sorted_ids[first]

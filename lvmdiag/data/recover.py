"""Recover article membership of stride-1 windows from shared chunk vectors, across several files.

In a stride-1 window file, the windows of one article overlap: window s holds chunks s..s+K and
window s+1 holds s+1..s+K+1. Hashing every chunk vector exactly (the K contexts and the target)
turns each window into a row of K + 1 chunk identities; a window is evidence that its chunks belong
to one article, so chunks are joined through the windows that hold them, and articles are the
connected components. All files (train, val, ood) are pooled, so the same code means the same
article in every file, which is what shows that "these splits share articles" for the arXiv form
that stores no ids.

Duplicated chunk content (boilerplate paragraphs, a paper ingested twice with edits, zero vectors)
would chain unrelated articles together. A chunk that occurs at the same window offset in two
*different* windows has more than one context (more than one distinct successor or predecessor):
it is a branch point. Branch chunks are not used for joining (they are counted in ``n_ambiguous``),
zero and non-finite chunks never join anything, and a window whose every chunk is a branch or zero
chunk stays on its own (``n_unresolved_windows``). Windows identical in all K + 1 vectors (the same
window in two files) are one window. Windows that cross article boundaries (the Wikipedia form
allows them) join the two articles, since nothing in the vectors tells them apart.

Memory is O(total windows x (K + 1)) integers; vectors are read in row blocks, never whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lvmdiag.data.hashing import hash_rows, row_keys
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.data.validate import block_rows_for
from lvmdiag.errors import InputError
from lvmdiag.results import Result, fmt, md_table

__all__ = ["ArticleRecovery", "hash_rows", "row_keys", "recover_articles", "slot_keys"]


@dataclass(frozen=True)
class ArticleRecovery(Result):
    """Articles recovered from shared chunk vectors across files.

    Attributes
    ----------
    labels : one (N_f,) int64 array per input file; the same code is the same article in every file
    files : name of each input (split name or path)
    n_articles : distinct articles (connected components) over all files
    n_windows : windows over all files
    n_windows_per_file, n_articles_per_file : per input file
    n_shared_articles : articles with windows in more than one file
    n_chunks : distinct non-zero chunk vectors seen
    n_null_chunks : chunk slots holding a zero or non-finite vector (never linked)
    n_ambiguous : branch chunks (same vector in two different contexts), not used for linking
    n_ambiguous_links : window slots holding a branch chunk (links not made)
    n_unresolved_windows : windows with no usable chunk (each left as its own article)
    share_unambiguous : share of windows whose article is fixed by at least one unambiguous chunk
    share_linked : share of windows whose recovered article holds more than one distinct window
        (near 0 when the files are not stride-1 windows: recovery then found nothing)
    n_duplicate_windows : windows identical to another window (in the same or another file)
    """

    labels: list[np.ndarray] = field(repr=False)
    files: list[str]
    n_articles: int
    n_windows: int
    n_windows_per_file: list[int]
    n_articles_per_file: list[int]
    n_shared_articles: int
    n_chunks: int
    n_null_chunks: int
    n_ambiguous: int
    n_ambiguous_links: int
    n_unresolved_windows: int
    share_unambiguous: float
    share_linked: float
    n_duplicate_windows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (per-window labels are left out: they are as long as the files)."""
        out = super().to_dict()
        out.pop("labels", None)
        return out

    @property
    def note(self) -> str:
        """One sentence for a report."""
        return (
            f"no article ids; {self.n_articles} articles recovered from shared chunk vectors, "
            f"{100 * (1 - self.share_unambiguous):.1f}% of windows ambiguous"
            + (f", {self.n_ambiguous} duplicated chunks not used for linking" if self.n_ambiguous else "")
        )

    def to_markdown(self) -> str:
        rows = [
            [name, nw, na] for name, nw, na in zip(self.files, self.n_windows_per_file, self.n_articles_per_file)
        ]
        table = md_table(["file", "windows", "articles"], rows)
        return (
            f"**Article recovery** (stride-1 chunk linking over {len(self.files)} file(s)): "
            f"{self.n_articles} articles from {self.n_windows} windows; {self.n_shared_articles} articles "
            f"have windows in more than one file. Linking confidence: {fmt(100 * self.share_unambiguous, 1)}% of "
            f"windows unambiguous, {self.n_ambiguous} duplicated chunk vectors (branch points) not used for "
            f"linking ({self.n_ambiguous_links} links skipped), {self.n_null_chunks} zero/non-finite chunk slots "
            f"ignored, {self.n_unresolved_windows} windows left unresolved.\n\n{table}\n"
        )


def slot_keys(seq: SequenceSet, progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 128-bit content key of every chunk slot of one file, and whether the slot is null (zero/non-finite).

    Returns ``keys`` (n (K+1), 2) uint64 and ``null`` (n (K+1),) bool, slots in window order (K contexts,
    then the target): 17 bytes per slot. This is the part of the recovery that reads vectors; on Dask it
    runs per shard on the worker that reads it (:mod:`lvmdiag.engine.dask_recovery`), whose keys stay
    there. ``progress(rows)`` after each block.
    """
    k, d = seq.k, seq.d
    width = k + 1
    keys = np.empty((seq.n * width, 2), dtype=np.uint64)
    null = np.empty(seq.n * width, dtype=bool)
    step = block_rows_for(width * d * 4)
    for start in range(0, seq.n, step):
        stop = min(start + step, seq.n)
        b = stop - start
        c = np.asarray(seq.contexts[start:stop])  # (b, K, D), native dtype: hashed from raw bytes
        t = np.asarray(seq.targets[start:stop])  # (b, D)
        kb = keys[start * width : stop * width].reshape(b, width, 2)
        kb[:, :k] = row_keys(c.reshape(b * k, d)).reshape(b, k, 2)
        kb[:, k] = row_keys(t)
        nb = null[start * width : stop * width].reshape(b, width)
        with np.errstate(over="ignore", invalid="ignore"):
            c32, t32 = c.astype(np.float32, copy=False), t.astype(np.float32, copy=False)
            sq_c = np.einsum("bkd,bkd->bk", c32, c32)
            sq_t = np.einsum("bd,bd->b", t32, t32)
        nb[:, :k] = ~(np.isfinite(sq_c) & (sq_c > 0))
        nb[:, k] = ~(np.isfinite(sq_t) & (sq_t > 0))
        if progress is not None:
            progress(b)
    return keys, null


def recover_articles(
    seqsets: Sequence[SequenceSet], progress: Callable[[int, int], None] | None = None,
) -> ArticleRecovery:
    """Link stride-1 windows of several files into articles by exact chunk-vector identity.

    Parameters
    ----------
    seqsets : the files to pool (train, val, ood, ...); they must share K and D
    progress : optional ``(done_windows, total_windows)`` callback, called after each row block

    Returns
    -------
    ArticleRecovery with per-file label arrays and linking diagnostics (see its attributes).
    """
    seqsets = list(seqsets)
    check_same_shape(seqsets)
    width = seqsets[0].k + 1
    sizes = [s.n for s in seqsets]
    total = int(sum(sizes))
    done = [0]

    def tick(rows: int) -> None:
        done[0] += rows
        if progress is not None:
            progress(done[0], total)

    keys = [slot_keys(s, tick) for s in seqsets]
    null = np.concatenate([nn for _, nn in keys]) if keys else np.zeros(0, bool)
    keys = np.concatenate([kk for kk, _ in keys]) if keys else np.zeros((0, 2), np.uint64)

    chunk_id, chunk_keys = rank_keys(keys, null)
    n_chunks = chunk_keys.shape[0]
    del keys, chunk_keys
    slots = chunk_id.reshape(total, width)  # (W, K+1) chunk id per slot, -1 for null
    uniq, inverse = np.unique(slots, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    n_dup = total - uniq.shape[0]

    # branch chunks: the same chunk at the same offset in two different windows
    usable = uniq >= 0
    pos = np.broadcast_to(np.arange(width), uniq.shape)
    pair = uniq[usable].astype(np.int64) * width + pos[usable]
    counts = np.bincount(pair, minlength=n_chunks * width).reshape(n_chunks, width) if n_chunks else np.zeros((0, width))
    branch = (counts > 1).any(axis=1)
    join = usable.copy()
    join[usable] = ~branch[uniq[usable]]
    n_ambiguous_links = int((usable & ~join).sum())

    has, anchor, _, comp = link_windows(uniq, join, n_chunks)
    window_label = np.where(has, comp[anchor] if n_chunks else -1, -1).astype(np.int64)
    # windows with no usable chunk: each its own article, numbered after the components
    lonely = np.flatnonzero(~has)
    window_label[lonely] = (comp.max() + 1 if n_chunks else 0) + np.arange(lonely.size)
    _, dense = np.unique(window_label, return_inverse=True)
    labels_all = dense.reshape(-1)[inverse].astype(np.int64)

    n_articles = int(dense.max()) + 1 if dense.size else 0
    windows_per_article = np.bincount(dense.reshape(-1), minlength=n_articles)
    share_linked = float((windows_per_article[dense.reshape(-1)] > 1)[inverse].mean()) if total else 0.0
    offsets = np.cumsum([0] + sizes)
    labels = [labels_all[offsets[i] : offsets[i + 1]] for i in range(len(seqsets))]
    per_file_articles, n_shared = file_counts(labels, n_articles)
    return ArticleRecovery(
        labels=labels,
        files=[s.name for s in seqsets],
        n_articles=n_articles,
        n_windows=total,
        n_windows_per_file=sizes,
        n_articles_per_file=per_file_articles,
        n_shared_articles=n_shared,
        n_chunks=int(n_chunks),
        n_null_chunks=int(null.sum()),
        n_ambiguous=int(branch.sum()),
        n_ambiguous_links=n_ambiguous_links,
        n_unresolved_windows=int((~has)[inverse].sum()),
        share_unambiguous=float(has[inverse].mean()) if total else 0.0,
        share_linked=share_linked,
        n_duplicate_windows=int(n_dup),
    )


def check_same_shape(seqsets: Sequence[Any]) -> None:
    """Inputs pooled by the recovery must exist and share K and D (one line naming the odd file otherwise)."""
    if not seqsets:
        raise InputError("recover_articles needs at least one sequence file.")
    k, d = seqsets[0].k, seqsets[0].d
    for s in seqsets[1:]:
        if s.k != k or s.d != d:
            raise InputError(
                f"{s.source} has windows (K={s.k}, D={s.d}) but {seqsets[0].source} has (K={k}, D={d}): "
                "articles can only be recovered across files with the same window length and encoder."
            )


def file_counts(labels: Sequence[np.ndarray], n_articles: int) -> tuple[list[int], int]:
    """Articles present in each file, and articles present in more than one file."""
    per_file, files_of_article = [], np.zeros(n_articles, dtype=np.int64)
    for lab in labels:
        present = np.unique(lab)
        per_file.append(int(present.size))
        files_of_article[present] += 1
    return per_file, int((files_of_article > 1).sum())


def rank_keys(keys: np.ndarray, excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense id per slot from its 128-bit key, ranked by (first word, second word); -1 for ``excluded`` slots.

    Returns the ids (m,) and the distinct keys in rank order (c, 2).
    """
    ids = np.full(keys.shape[0], -1, dtype=np.int64)
    idx = np.flatnonzero(~np.asarray(excluded, bool))
    if idx.size == 0:
        return ids, np.zeros((0, 2), np.uint64)
    sub = keys[idx]
    order = np.lexsort((sub[:, 1], sub[:, 0]))
    s = sub[order]
    new = np.r_[True, (s[1:] != s[:-1]).any(axis=1)]
    ids[idx[order]] = np.cumsum(new) - 1
    return ids, s[new]


def link_windows(chunk_id: np.ndarray, usable: np.ndarray, n_chunks: int
                 ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Chunks joined through the windows that hold them: connected components over chunk ids.

    ``chunk_id`` (W, K+1) and ``usable`` (W, K+1) (the slots allowed to join). Returns, per window, whether
    it has a usable slot and its anchor (first usable chunk), then the number of components and each
    chunk's component (scipy numbers them in order of their smallest chunk id).
    """
    has = usable.any(axis=1)
    anchor = chunk_id[np.arange(chunk_id.shape[0]), np.argmax(usable, axis=1)] if chunk_id.shape[0] else \
        np.zeros(0, np.int64)
    if n_chunks == 0:
        return has, anchor, 0, np.zeros(0, np.int64)
    rows, cols = np.nonzero(usable)
    graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (anchor[rows], chunk_id[rows, cols])),
                       shape=(n_chunks, n_chunks)).tocsr()
    n_comp, comp = connected_components(graph, directed=False)
    return has, anchor, int(n_comp), comp.astype(np.int64)

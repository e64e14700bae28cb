"""Article recovery as a two-round join on chunk keys: :func:`recover_articles` split into per-piece and per-bucket steps.

:func:`lvmdiag.data.recover.recover_articles` links every chunk slot of every file on one machine.
Here the same linking is cut into steps that each see one *piece* of the input (a shard) or one
*bucket* of chunk keys (``key mod P``), so that on Dask no machine needs every key:

1. per piece, :func:`piece_keys` hashes the chunk slots and :func:`branch_records` sends
   (chunk key, offset, window key) of each distinct window to the chunk's bucket, and each distinct
   window key to its own bucket;
2. per bucket, :func:`branch_bucket` finds the branch chunks (one chunk at one offset of two
   different windows), and counts distinct chunks, distinct windows and the slots not linked;
3. per piece, given every branch key, :func:`piece_fragments` links the piece's own windows into
   fragments (connected components over its non-branch chunks) and sends (chunk key, fragment) to
   the chunk's bucket;
4. per bucket, :func:`join_bucket` returns edges between fragments of different pieces that share a
   chunk, and :func:`spanning_forest` reduces any set of edges to a forest with the same components
   (at most one edge per fragment, whatever the number of shared chunks);
5. :func:`number_articles` unites the fragments along the forest and numbers articles exactly as
   :func:`recover_articles` does (components by their smallest chunk key, then windows with no usable
   chunk in the order of their chunk keys), from per-fragment summaries only; :func:`window_labels`
   then turns each piece's window codes into labels. Both give the same labels and the same diagnostics.

:func:`link_pieces` runs the steps one after another in this process (the reference for the Dask
driver, :mod:`lvmdiag.engine.dask_recovery`, which runs the same functions as tasks).

A key is 128 bits: two independent 64-bit hashes (two uint64 columns, "words"), ordered by the first
word then the second, as :func:`recover_articles` ranks chunks. A window's key hashes its slot keys
and its null mask. Fragments are the unit the client sees: one per run of an article's windows that
share chunks inside one piece (about one per article per shard for shards written in article order;
up to one per window when a shard's windows are shuffled).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lvmdiag.data.hashing import row_keys
from lvmdiag.data.recover import ArticleRecovery, file_counts, link_windows, rank_keys
from lvmdiag.errors import InputError

#: a 128-bit key as one sortable record (words compared in order)
KEY = np.dtype([("hi", "<u8"), ("lo", "<u8")])


class _Arrays:
    """``sys.getsizeof`` (hence ``dask.sizeof``) counts the arrays, so Dask sees what a piece really holds."""

    def __sizeof__(self) -> int:
        return 64 + sum(getattr(getattr(self, f.name), "nbytes", 8) for f in fields(self))


@dataclass
class PieceKeys(_Arrays):
    """One piece's chunk-slot keys (kept where the piece was read, between the two rounds): 17 (K+1) + 16 bytes a window."""

    keys: np.ndarray  # (n, K+1, 2) uint64 slot keys
    null: np.ndarray  # (n, K+1) bool: zero or non-finite slot
    window: np.ndarray  # (n, 2) uint64 window keys

    @property
    def n(self) -> int:
        return int(self.null.shape[0])


@dataclass
class BucketCounts(_Arrays):
    """What one round-1 bucket found among the chunk keys and window keys that hash to it."""

    branch: np.ndarray  # (m, 2) uint64 branch chunk keys, sorted
    n_chunks: int  # distinct non-null chunks
    n_windows: int  # distinct windows
    n_ambiguous_links: int  # (distinct window, offset) slots holding a branch chunk


@dataclass
class PieceFragments(_Arrays):
    """One piece's windows linked within the piece, summarised per fragment: O(fragments), no per-window array."""

    min_key: np.ndarray  # (F, 2) uint64 smallest chunk key of each fragment
    n_distinct: np.ndarray  # (F,) distinct windows in each fragment
    single: np.ndarray  # (F, 2) uint64 the window key of a fragment with one distinct window (else 0)
    rows: np.ndarray  # (F,) windows (rows) in each fragment
    lonely: np.ndarray  # (L, 2 + 3 (K+1)) uint64: window key, then per slot (not null, key) of each distinct
    #                     window with no usable chunk
    n_null: int  # null slots (with multiplicity)
    n_windows: int  # rows of the piece
    n_lonely_rows: int  # rows with no usable chunk


def as_records(words: np.ndarray) -> np.ndarray:
    """(m, 2) uint64 key words as (m,) :data:`KEY` records (a view when contiguous)."""
    return np.ascontiguousarray(words, dtype=np.uint64).view(KEY).ravel()


def is_new_row(sorted_rows: np.ndarray) -> np.ndarray:
    """(m,) True where a row of a sorted (m, c) array differs from the row before it (True for row 0)."""
    if sorted_rows.shape[0] == 0:
        return np.zeros(0, bool)
    return np.r_[True, (sorted_rows[1:] != sorted_rows[:-1]).any(axis=1)]


def unique_rows(x: np.ndarray) -> np.ndarray:
    """Distinct rows of a (m, c) uint64 array, sorted by column 0, then 1, ..."""
    if x.shape[0] <= 1:
        return x
    s = x[np.lexsort(x.T[::-1])]
    return s[is_new_row(s)]


def check_buckets(n_buckets: int) -> int:
    if isinstance(n_buckets, bool) or not isinstance(n_buckets, (int, np.integer)) or n_buckets < 1:
        raise InputError(f"n_buckets must be a whole number >= 1; got {n_buckets!r}.")
    return int(n_buckets)


def piece_keys(keys: np.ndarray, null: np.ndarray, width: int) -> PieceKeys:
    """Wrap :func:`lvmdiag.data.recover.slot_keys` output ((n (K+1), 2), (n (K+1),)) with its window keys."""
    n = null.size // width
    slots = np.ascontiguousarray(keys, dtype=np.uint64).reshape(n, width, 2)
    null = np.asarray(null, bool).reshape(n, width)
    masked = np.where(null[:, :, None], np.uint64(0), slots).reshape(n, 2 * width)
    null_bits = (null.astype(np.uint64) << np.arange(width, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    window = row_keys(np.ascontiguousarray(np.c_[masked, null_bits])) if n else np.zeros((0, 2), np.uint64)
    return PieceKeys(slots, null, window)


def _bucket_of(first_word: np.ndarray, n_buckets: int) -> np.ndarray:
    return (first_word % np.uint64(n_buckets)).astype(np.int64)


def _by_bucket(rows: np.ndarray, n_buckets: int) -> list[np.ndarray]:
    """The rows cut by the bucket of their column 0 (a key's first word), one array per bucket."""
    bucket = _bucket_of(rows[:, 0], n_buckets)
    order = np.argsort(bucket, kind="stable")
    return np.split(rows[order], np.searchsorted(bucket[order], np.arange(1, n_buckets)))


def branch_records(piece: PieceKeys, n_buckets: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Round 1 of a piece, per bucket: (chunk key (2 words), offset, window key (2 words)) of every non-null slot
    of each distinct window (40 bytes a slot), and the distinct window keys."""
    n_buckets = check_buckets(n_buckets)
    order = np.lexsort(piece.window.T[::-1])  # one row per distinct window: its key stands for its slots
    new = is_new_row(piece.window[order])
    windows, first = piece.window[order][new], order[new]
    w_idx, offset = np.nonzero(~piece.null[first])
    rows = np.empty((w_idx.size, 5), np.uint64)
    rows[:, :2] = piece.keys[first[w_idx], offset]
    rows[:, 2] = offset
    rows[:, 3:] = windows[w_idx]
    return list(zip(_by_bucket(rows, n_buckets), _by_bucket(windows, n_buckets)))


def branch_bucket(*records: tuple[np.ndarray, np.ndarray]) -> BucketCounts:
    """Round 1 of a bucket: its branch chunks and counts, from every piece's records for it."""
    slots = unique_rows(np.concatenate([r[0] for r in records])) if records else np.zeros((0, 5), np.uint64)
    n_windows = unique_rows(np.concatenate([r[1] for r in records])).shape[0] if records else 0
    if slots.shape[0] == 0:
        return BucketCounts(np.zeros((0, 2), np.uint64), 0, int(n_windows), 0)
    position = np.cumsum(is_new_row(slots[:, :3])) - 1  # one (chunk, offset)
    in_two_windows = np.bincount(position) > 1
    new_chunk = is_new_row(slots[:, :2])
    chunk = np.cumsum(new_chunk) - 1
    is_branch = np.bincount(chunk, weights=in_two_windows[position], minlength=int(chunk[-1]) + 1) > 0
    return BucketCounts(branch=slots[new_chunk][is_branch, :2].copy(), n_chunks=int(new_chunk.sum()),
                        n_windows=int(n_windows), n_ambiguous_links=int(is_branch[chunk].sum()))


def all_branches(*buckets: BucketCounts) -> np.ndarray:
    """Every bucket's branch keys, sorted (what round 2 of each piece needs)."""
    return unique_rows(np.concatenate([b.branch for b in buckets])) if buckets else np.zeros((0, 2), np.uint64)


def _is_member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Rows of (m, 2) ``keys`` present in the sorted distinct (s, 2) ``sorted_keys``."""
    if sorted_keys.shape[0] == 0 or keys.shape[0] == 0:
        return np.zeros(keys.shape[0], bool)
    s, q = as_records(sorted_keys), as_records(keys)
    return s[np.minimum(np.searchsorted(s, q), s.size - 1)] == q


def piece_fragments(piece: PieceKeys, branch: np.ndarray, n_buckets: int
                    ) -> tuple[np.ndarray, PieceFragments, list[np.ndarray]]:
    """Round 2 of a piece: its windows linked into fragments.

    Returns each window's code (its fragment, or -1 - its index among the piece's lonely windows), the
    fragments' summary, and per bucket the (chunk key, fragment) rows.
    """
    n_buckets = check_buckets(n_buckets)
    n, width = piece.null.shape
    flat = piece.keys.reshape(-1, 2)
    usable = (~piece.null.ravel()) & ~_is_member(flat, branch)
    chunk_id, chunk_keys = rank_keys(flat, ~usable)  # local ids ranked by key, as recover_articles ranks
    chunk_id = chunk_id.reshape(n, width)
    has, anchor, n_frag, comp = link_windows(chunk_id, usable.reshape(n, width), chunk_keys.shape[0])
    code = np.zeros(n, np.int64)
    code[has] = comp[anchor[has]]
    # scipy numbers components in order of their smallest node, and nodes are ranked by key
    min_key = chunk_keys[np.unique(comp, return_index=True)[1]]
    frag_windows = unique_rows(np.c_[code[has].astype(np.uint64), piece.window[has]])
    frag_of = frag_windows[:, 0].astype(np.int64)
    n_distinct = np.bincount(frag_of, minlength=n_frag)
    single = np.zeros((n_frag, 2), np.uint64)
    one = n_distinct[frag_of] == 1
    single[frag_of[one]] = frag_windows[one, 1:]
    rows = np.bincount(code[has], minlength=n_frag)
    lonely = _lonely_windows(piece, np.flatnonzero(~has), code)
    records = np.c_[chunk_keys, comp.astype(np.uint64)] if n_frag else np.zeros((0, 3), np.uint64)
    out = PieceFragments(min_key=min_key, n_distinct=n_distinct, single=single, rows=rows, lonely=lonely,
                         n_null=int(piece.null.sum()), n_windows=int(n), n_lonely_rows=int(n - has.sum()))
    return code, out, _by_bucket(records, n_buckets)


def _lonely_windows(piece: PieceKeys, rows: np.ndarray, code: np.ndarray) -> np.ndarray:
    """The distinct windows among ``rows`` (no usable chunk): window key and per-slot (not null, key) order key.

    Sets ``code[rows]`` to -1 - (their index in the returned table).
    """
    width = piece.null.shape[1]
    if rows.size == 0:
        return np.zeros((0, 2 + 3 * width), np.uint64)
    keys = piece.window[rows]
    distinct = unique_rows(keys)
    at = np.searchsorted(as_records(distinct), as_records(keys))
    code[rows] = -1 - at
    first = rows[np.unique(at, return_index=True)[1]]
    order_key = np.empty((first.size, width, 3), np.uint64)
    order_key[:, :, 0] = ~piece.null[first]  # a null slot (chunk id -1 in recover_articles) sorts first
    order_key[:, :, 1:] = np.where(piece.null[first][:, :, None], np.uint64(0), piece.keys[first])
    return np.c_[distinct, order_key.reshape(first.size, 3 * width)]


def join_bucket(*records: np.ndarray) -> np.ndarray:
    """Round 2 of a bucket: (piece, fragment, piece, fragment) edges wherever one chunk is in two pieces' fragments.

    ``records[p]`` are piece p's (chunk key, fragment) rows for this bucket (a chunk is in one fragment of a
    piece). Returned as a spanning forest (:func:`spanning_forest`).
    """
    rows = [np.c_[r, np.full(r.shape[0], p, np.uint64)] for p, r in enumerate(records)]
    t = np.concatenate(rows) if rows else np.zeros((0, 4), np.uint64)
    if t.shape[0] < 2:
        return np.zeros((0, 4), np.int64)
    t = t[np.lexsort((t[:, 3], t[:, 1], t[:, 0]))]
    new = is_new_row(t[:, :2])
    head = np.flatnonzero(new)[np.cumsum(new) - 1]  # first row of each chunk's group
    other = ~new
    edges = np.c_[t[head[other], 3], t[head[other], 2], t[other, 3], t[other, 2]].astype(np.int64)
    return spanning_forest(edges)


def spanning_forest(*edge_sets: np.ndarray) -> np.ndarray:
    """(piece, fragment, piece, fragment) edges with the same connected components, at most one per fragment.

    Mergeable: the forest of some forests is a forest of their union, so buckets reduce in a tree.
    """
    e = np.concatenate(edge_sets) if edge_sets else np.zeros((0, 4), np.int64)
    if e.shape[0] == 0:
        return np.zeros((0, 4), np.int64)
    ends = np.r_[e[:, :2], e[:, 2:]]
    nodes, idx = np.unique(ends[:, 0] * (1 << 32) + ends[:, 1], return_inverse=True)
    idx = idx.ravel()
    m = e.shape[0]
    graph = coo_matrix((np.ones(m, np.int8), (idx[:m], idx[m:])), shape=(nodes.size, nodes.size))
    _, comp = connected_components(graph, directed=False)
    root = np.full(comp.max() + 1, nodes.size, np.int64)
    np.minimum.at(root, comp, np.arange(nodes.size))
    child = np.flatnonzero(root[comp] != np.arange(nodes.size))
    a, b = nodes[root[comp[child]]], nodes[child]
    return np.c_[a >> 32, a & 0xFFFFFFFF, b >> 32, b & 0xFFFFFFFF].astype(np.int64)


@dataclass(frozen=True)
class Numbering(_Arrays):
    """Article labels of every fragment and lonely window, piece by piece, and the diagnostics they give."""

    fragment_labels: list  # per piece, (F_p,) int64
    lonely_labels: list  # per piece, (L_p,) int64
    n_articles: int
    n_unresolved_windows: int
    share_linked: float

    def __sizeof__(self) -> int:
        return 64 + sum(a.nbytes for a in self.fragment_labels) + sum(a.nbytes for a in self.lonely_labels)

    def of_piece(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        return self.fragment_labels[p], self.lonely_labels[p]


def number_articles(forest: np.ndarray, *fragments: PieceFragments) -> Numbering:
    """Unite every piece's fragments along the forest and number the articles as ``recover_articles`` does.

    O(fragments + lonely windows): no per-window array (on Dask this runs on a worker, not the client).
    """
    sizes = np.array([f.min_key.shape[0] for f in fragments], np.int64)
    offset = np.r_[0, np.cumsum(sizes)]
    n_frag = int(offset[-1])
    src, dst = offset[forest[:, 0]] + forest[:, 1], offset[forest[:, 2]] + forest[:, 3]
    graph = coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(n_frag, n_frag))
    n_comp, comp = connected_components(graph, directed=False) if n_frag else (0, np.zeros(0, np.int32))
    cat = (lambda name, empty: np.concatenate([getattr(f, name) for f in fragments]) if fragments else empty)
    min_key = cat("min_key", np.zeros((0, 2), np.uint64))
    # an article's rank is that of its smallest chunk key (scipy's order over ranked chunk ids)
    by_key = np.lexsort((min_key[:, 1], min_key[:, 0]))
    rank = np.empty(n_comp, np.int64)
    rank[np.argsort(np.unique(comp[by_key], return_index=True)[1])] = np.arange(n_comp)
    # linked: the article holds more than one distinct window
    n_distinct, single = cat("n_distinct", np.zeros(0, np.int64)), cat("single", np.zeros((0, 2), np.uint64))
    multi = np.bincount(comp, weights=n_distinct > 1, minlength=n_comp) > 0
    one = n_distinct == 1
    singles = unique_rows(np.c_[comp[one].astype(np.uint64), single[one]])
    multi |= np.bincount(singles[:, 0].astype(np.int64), minlength=n_comp) > 1
    linked_rows = int(cat("rows", np.zeros(0, np.int64))[multi[comp]].sum()) if n_frag else 0
    # windows with no usable chunk: distinct ones (by window key) ranked after every component
    lonely = cat("lonely", np.zeros((0, 2), np.uint64))
    distinct = unique_rows(lonely[:, :2])
    at = np.searchsorted(as_records(distinct), as_records(lonely[:, :2])) if lonely.shape[0] else np.zeros(0, np.int64)
    order_keys = np.empty((distinct.shape[0], max(lonely.shape[1] - 2, 0)), np.uint64)
    order_keys[at] = lonely[:, 2:]
    lone_rank = np.empty(distinct.shape[0], np.int64)
    lone_rank[np.lexsort(order_keys.T[::-1])] = n_comp + np.arange(distinct.shape[0])
    lone_cut = np.r_[0, np.cumsum([f.lonely.shape[0] for f in fragments])]
    total = sum(f.n_windows for f in fragments)
    return Numbering(
        fragment_labels=[rank[comp[offset[p] : offset[p + 1]]] for p in range(len(fragments))],
        lonely_labels=[lone_rank[at[lone_cut[p] : lone_cut[p + 1]]] for p in range(len(fragments))],
        n_articles=int(n_comp + distinct.shape[0]),
        n_unresolved_windows=sum(f.n_lonely_rows for f in fragments),
        share_linked=linked_rows / total if total else 0.0,
    )


def window_labels(code: np.ndarray, labels: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """A piece's window codes turned into article labels in place, from its (fragment, lonely) labels."""
    fragment_labels, lonely_labels = labels
    lone = code < 0
    lone_labels = lonely_labels[-1 - code[lone]]
    code[~lone] = fragment_labels[code[~lone]]
    code[lone] = lone_labels
    return code


def link_pieces(pieces: Sequence[PieceKeys], n_buckets: int
                ) -> tuple[list[np.ndarray], Numbering, list[BucketCounts], int]:
    """Every step in this process, piece after piece and bucket after bucket (the reference for the Dask driver).

    Returns each piece's labels, the numbering, the round-1 buckets and the null slots.
    """
    n_buckets = check_buckets(n_buckets)
    round1 = [branch_records(p, n_buckets) for p in pieces]
    buckets = [branch_bucket(*[r[b] for r in round1]) for b in range(n_buckets)]
    branch = all_branches(*buckets)
    round2 = [piece_fragments(p, branch, n_buckets) for p in pieces]
    forest = spanning_forest(*[join_bucket(*[r[2][b] for r in round2]) for b in range(n_buckets)])
    numbering = number_articles(forest, *[r[1] for r in round2])
    labels = [window_labels(r[0], numbering.of_piece(p)) for p, r in enumerate(round2)]
    return labels, numbering, buckets, sum(r[1].n_null for r in round2)


def joined_recovery(files: Sequence[str], pieces_per_file: Sequence[int], piece_labels: list[np.ndarray],
                    joined: Numbering, buckets: Sequence[BucketCounts], n_null_chunks: int) -> ArticleRecovery:
    """The :class:`ArticleRecovery` of a join (pieces listed file after file, ``pieces_per_file`` of each).

    ``piece_labels`` is emptied as the per-file arrays are built (one piece at a time is copied).
    """
    labels = []
    for count in pieces_per_file:
        mine = [piece_labels.pop(0) for _ in range(count)]
        labels.append(np.concatenate(mine) if mine else np.zeros(0, np.int64))
        del mine
    sizes = [int(lab.size) for lab in labels]
    total = sum(sizes)
    per_file, n_shared = file_counts(labels, joined.n_articles)
    return ArticleRecovery(
        labels=labels,
        files=list(files),
        n_articles=joined.n_articles,
        n_windows=total,
        n_windows_per_file=sizes,
        n_articles_per_file=per_file,
        n_shared_articles=n_shared,
        n_chunks=sum(b.n_chunks for b in buckets),
        n_null_chunks=int(n_null_chunks),
        n_ambiguous=sum(int(b.branch.shape[0]) for b in buckets),
        n_ambiguous_links=sum(b.n_ambiguous_links for b in buckets),
        n_unresolved_windows=joined.n_unresolved_windows,
        share_unambiguous=(total - joined.n_unresolved_windows) / total if total else 0.0,
        share_linked=joined.share_linked,
        n_duplicate_windows=total - sum(b.n_windows for b in buckets),
    )

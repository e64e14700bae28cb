"""Article recovery as a two-round join on chunk keys: :func:`recover_articles` split into per-piece and per-bucket steps.

:func:`lvmdiag.data.recover.recover_articles` links every chunk slot of every file on one machine
(17 bytes per slot). Here the same linking is cut into steps that each see one *piece* of the input
(a shard) or one *bucket* of chunk keys (``key mod P``), so that on Dask no machine holds every key:

1. per piece, :func:`piece_keys` hashes the chunk slots and :func:`branch_records` sends
   (chunk key, offset, window key) of each distinct window to the chunk's bucket, and each distinct
   window key to its own bucket;
2. per bucket, :func:`branch_bucket` finds the branch chunks (one chunk at one offset of two
   different windows), and counts distinct chunks, distinct windows and the slots not linked;
3. per piece, given every branch key, :func:`piece_fragments` links the piece's own windows into
   fragments (connected components over its non-branch chunks) and sends (chunk key, fragment) to
   the chunk's bucket;
4. per bucket, :func:`join_bucket` emits an edge wherever one chunk is in fragments of two pieces;
5. :func:`assemble` unites the fragments along those edges and numbers articles exactly as
   :func:`recover_articles` does (components by their smallest chunk key, then windows with no usable
   chunk in the order of their chunk keys), so both give the same labels and the same diagnostics.

:func:`link_pieces` runs the steps one after another in this process (the reference for the Dask
driver, :mod:`lvmdiag.engine.dask_recovery`, which runs the same functions as tasks).

Keys are 128-bit content hashes (two uint64 columns, ordered by the first then the second, as
:func:`recover_articles` orders chunk ids); a window's key hashes its slot keys and null mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lvmdiag.data.hashing import row_keys

if TYPE_CHECKING:
    from lvmdiag.data.recover import ArticleRecovery


@dataclass
class PieceKeys:
    """One piece's chunk-slot keys (kept where the piece was read, between the two rounds)."""

    keys: np.ndarray  # (n, K+1, 2) uint64 slot keys
    null: np.ndarray  # (n, K+1) bool: zero or non-finite slot
    window: np.ndarray  # (n, 2) uint64 window keys

    @property
    def n(self) -> int:
        return int(self.null.shape[0])


@dataclass
class BucketCounts:
    """What one round-1 bucket found among the chunk keys and window keys that hash to it."""

    branch: np.ndarray  # (m, 2) uint64 branch chunk keys, sorted
    n_chunks: int  # distinct non-null chunks
    n_windows: int  # distinct windows
    n_ambiguous_links: int  # (distinct window, offset) slots holding a branch chunk


@dataclass
class PieceFragments:
    """One piece's windows linked within the piece (small: O(fragments) plus one code per window)."""

    code: np.ndarray  # (n,) int64: fragment of each window (>= 0), or -1 - (index of its lonely window)
    min_key: np.ndarray  # (F, 2) uint64 smallest chunk key of each fragment
    n_distinct: np.ndarray  # (F,) distinct windows in each fragment
    single: np.ndarray  # (F, 2) uint64 the window key of a fragment with one distinct window (else 0)
    rows: np.ndarray  # (F,) windows (rows) in each fragment
    lonely: np.ndarray  # (L, 2 + 3 (K+1)) uint64: window key, then per slot (not null, key) of each distinct
    #                     window with no usable chunk


def piece_keys(keys: np.ndarray, null: np.ndarray, width: int) -> PieceKeys:
    """Wrap :func:`lvmdiag.data.recover.slot_keys` output ((n (K+1), 2), (n (K+1),)) with its window keys."""
    n = null.size // width
    k3 = np.ascontiguousarray(keys, dtype=np.uint64).reshape(n, width, 2)
    nl = np.asarray(null, bool).reshape(n, width)
    masked = np.where(nl[:, :, None], np.uint64(0), k3).reshape(n, 2 * width)
    bits = (nl.astype(np.uint64) << np.arange(width, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    window = row_keys(np.ascontiguousarray(np.c_[masked, bits])) if n else np.zeros((0, 2), np.uint64)
    return PieceKeys(k3, nl, window)


def unique_rows(x: np.ndarray) -> np.ndarray:
    """Distinct rows of a (m, c) uint64 array, sorted by column 0, then 1, ..."""
    if x.shape[0] <= 1:
        return x
    s = x[np.lexsort(x.T[::-1])]
    return s[np.r_[True, (s[1:] != s[:-1]).any(axis=1)]]


def _bucket_of(key_a: np.ndarray, n_buckets: int) -> np.ndarray:
    return (key_a % np.uint64(n_buckets)).astype(np.int64)


def _split(rows: np.ndarray, bucket: np.ndarray, n_buckets: int) -> list[np.ndarray]:
    order = np.argsort(bucket, kind="stable")
    cuts = np.searchsorted(bucket[order], np.arange(1, n_buckets))
    return np.split(rows[order], cuts)


def branch_records(piece: PieceKeys, n_buckets: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Round 1 of a piece, per bucket: (chunk a, chunk b, offset, window a, window b) of every non-null slot of
    each distinct window, and the distinct window keys."""
    n, width = piece.null.shape
    # one row per distinct window (a window key identifies the whole slot tuple)
    order = np.lexsort(piece.window.T[::-1])
    s = piece.window[order]
    new = np.r_[True, (s[1:] != s[:-1]).any(axis=1)] if n else np.zeros(0, bool)
    wins, first = s[new], order[new]
    live = ~piece.null[first]
    w_idx, j = np.nonzero(live)
    rows = np.empty((w_idx.size, 5), np.uint64)
    rows[:, :2] = piece.keys[first[w_idx], j]
    rows[:, 2] = j
    rows[:, 3:] = piece.window[first[w_idx]]
    chunks = _split(rows, _bucket_of(rows[:, 0], n_buckets), n_buckets)
    windows = _split(wins, _bucket_of(wins[:, 0], n_buckets), n_buckets)
    return list(zip(chunks, windows))


def branch_bucket(*records: tuple[np.ndarray, np.ndarray]) -> BucketCounts:
    """Round 1 of a bucket: its branch chunks and counts, from every piece's records for it."""
    t = unique_rows(np.concatenate([r[0] for r in records])) if records else np.zeros((0, 5), np.uint64)
    w = unique_rows(np.concatenate([r[1] for r in records])) if records else np.zeros((0, 2), np.uint64)
    if t.shape[0] == 0:
        return BucketCounts(np.zeros((0, 2), np.uint64), 0, int(w.shape[0]), 0)
    new_pos = np.r_[True, (t[1:, :3] != t[:-1, :3]).any(axis=1)]  # a new (chunk, offset)
    pos_id = np.cumsum(new_pos) - 1
    in_two = np.bincount(pos_id) > 1  # one chunk at one offset of two different windows
    new_chunk = np.r_[True, (t[1:, :2] != t[:-1, :2]).any(axis=1)]
    chunk_id = np.cumsum(new_chunk) - 1
    is_branch = np.bincount(chunk_id, weights=in_two[pos_id], minlength=int(chunk_id[-1]) + 1) > 0
    return BucketCounts(branch=t[new_chunk][is_branch, :2].copy(), n_chunks=int(new_chunk.sum()),
                        n_windows=int(w.shape[0]), n_ambiguous_links=int(is_branch[chunk_id].sum()))


def all_branches(*buckets: BucketCounts) -> np.ndarray:
    """Every bucket's branch keys, sorted (what round 2 of each piece needs)."""
    b = np.concatenate([x.branch for x in buckets]) if buckets else np.zeros((0, 2), np.uint64)
    return unique_rows(b)


def _is_member(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Rows of (m, 2) ``keys`` present in the sorted distinct (s, 2) ``sorted_keys``."""
    if sorted_keys.shape[0] == 0 or keys.shape[0] == 0:
        return np.zeros(keys.shape[0], bool)
    kt = np.dtype([("a", "<u8"), ("b", "<u8")])
    s = np.ascontiguousarray(sorted_keys).view(kt).ravel()
    q = np.ascontiguousarray(keys).view(kt).ravel()
    at = np.minimum(np.searchsorted(s, q), s.size - 1)
    return s[at] == q


def piece_fragments(piece: PieceKeys, branch: np.ndarray, n_buckets: int
                    ) -> tuple[PieceFragments, list[np.ndarray]]:
    """Round 2 of a piece: its windows linked into fragments, and per bucket (chunk a, chunk b, fragment) rows."""
    n, width = piece.null.shape
    flat = piece.keys.reshape(-1, 2)
    usable = (~piece.null.ravel()) & ~_is_member(flat, branch)
    idx = np.flatnonzero(usable)
    sub = flat[idx]
    order = np.lexsort((sub[:, 1], sub[:, 0]))
    s = sub[order]
    new = np.r_[True, (s[1:] != s[:-1]).any(axis=1)] if s.shape[0] else np.zeros(0, bool)
    run = np.cumsum(new) - 1
    n_chunks = int(run[-1]) + 1 if run.size else 0
    ckeys = s[new]  # (c, 2) the piece's usable chunks, sorted by key: local id = rank
    cid = np.full(n * width, -1, np.int64)
    cid[idx[order]] = run
    cid = cid.reshape(n, width)
    use = usable.reshape(n, width)
    has = use.any(axis=1)
    anchor = cid[np.arange(n), np.argmax(use, axis=1)] if n else np.zeros(0, np.int64)
    r, c = np.nonzero(use)
    graph = coo_matrix((np.ones(r.size, np.int8), (anchor[r], cid[r, c])), shape=(n_chunks, n_chunks)).tocsr()
    n_frag, comp = connected_components(graph, directed=False) if n_chunks else (0, np.zeros(0, np.int64))
    comp = comp.astype(np.int64)
    code = np.full(n, 0, np.int64)
    code[has] = comp[anchor[has]]
    # scipy numbers components in order of their smallest node; nodes are ranked by key
    _, first_node = np.unique(comp, return_index=True)
    min_key = ckeys[first_node]
    fw = unique_rows(np.c_[code[has].astype(np.uint64), piece.window[has]])
    frag_of_fw = fw[:, 0].astype(np.int64)
    n_distinct = np.bincount(frag_of_fw, minlength=n_frag)
    single = np.zeros((n_frag, 2), np.uint64)
    one = n_distinct[frag_of_fw] == 1
    single[frag_of_fw[one]] = fw[one, 1:]
    rows = np.bincount(code[has], minlength=n_frag)
    # windows with no usable chunk: each distinct one is an article of its own
    lone_rows = np.flatnonzero(~has)
    lone_keys = piece.window[lone_rows]
    if lone_rows.size:
        uniq_lone = unique_rows(lone_keys)
        kt = np.dtype([("a", "<u8"), ("b", "<u8")])
        pos = np.searchsorted(np.ascontiguousarray(uniq_lone).view(kt).ravel(),
                              np.ascontiguousarray(lone_keys).view(kt).ravel())
        code[lone_rows] = -1 - pos
        first_of = lone_rows[np.unique(pos, return_index=True)[1]]
        order_key = np.empty((first_of.size, width, 3), np.uint64)
        order_key[:, :, 0] = ~piece.null[first_of]
        order_key[:, :, 1:] = np.where(piece.null[first_of][:, :, None], np.uint64(0), piece.keys[first_of])
        lonely = np.c_[uniq_lone, order_key.reshape(first_of.size, 3 * width)]
    else:
        lonely = np.zeros((0, 2 + 3 * width), np.uint64)
    recs = np.c_[ckeys, comp.astype(np.uint64)] if n_chunks else np.zeros((0, 3), np.uint64)
    out = PieceFragments(code=code, min_key=min_key, n_distinct=n_distinct, single=single, rows=rows, lonely=lonely)
    return out, _split(recs, _bucket_of(recs[:, 0], n_buckets), n_buckets)


def join_bucket(*records: np.ndarray) -> np.ndarray:
    """Round 2 of a bucket: (piece, fragment, piece, fragment) edges wherever one chunk is in two pieces' fragments.

    ``records[p]`` are piece p's (chunk a, chunk b, fragment) rows for this bucket.
    """
    rows = [np.c_[r, np.full(r.shape[0], p, np.uint64)] for p, r in enumerate(records)]
    t = np.concatenate(rows) if rows else np.zeros((0, 4), np.uint64)
    if t.shape[0] < 2:
        return np.zeros((0, 4), np.int64)
    t = t[np.lexsort((t[:, 3], t[:, 1], t[:, 0]))]
    new = np.r_[True, (t[1:, :2] != t[:-1, :2]).any(axis=1)]
    head = np.flatnonzero(new)[np.cumsum(new) - 1]  # first row of each chunk's group
    other = ~new
    return np.c_[t[head[other], 3], t[head[other], 2], t[other, 3], t[other, 2]].astype(np.int64)


@dataclass(frozen=True)
class JoinedLabels:
    """What :func:`assemble` returns: labels and the diagnostics :class:`ArticleRecovery` reports."""

    labels: list[np.ndarray]  # per piece, (n_p,) int64 article codes
    n_articles: int
    n_unresolved_windows: int
    share_linked: float


def assemble(fragments: Sequence[PieceFragments], edges: Sequence[np.ndarray]) -> JoinedLabels:
    """Unite every piece's fragments along the buckets' edges and number the articles as ``recover_articles``."""
    sizes = np.array([f.min_key.shape[0] for f in fragments], np.int64)
    offset = np.r_[0, np.cumsum(sizes)]
    n_frag = int(offset[-1])
    e = np.concatenate(edges) if edges else np.zeros((0, 4), np.int64)
    src, dst = offset[e[:, 0]] + e[:, 1], offset[e[:, 2]] + e[:, 3]
    graph = coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(n_frag, n_frag)).tocsr()
    n_comp, comp = connected_components(graph, directed=False) if n_frag else (0, np.zeros(0, np.int64))
    min_key = np.concatenate([f.min_key for f in fragments]) if n_frag else np.zeros((0, 2), np.uint64)
    # an article's rank is that of its smallest chunk key (scipy's order over ranked chunk ids)
    by_key = np.lexsort((min_key[:, 1], min_key[:, 0]))
    _, first = np.unique(comp[by_key], return_index=True)
    rank = np.empty(n_comp, np.int64)
    rank[np.argsort(first)] = np.arange(n_comp)
    # linked: an article holding more than one distinct window
    n_distinct = np.concatenate([f.n_distinct for f in fragments]) if n_frag else np.zeros(0, np.int64)
    single = np.concatenate([f.single for f in fragments]) if n_frag else np.zeros((0, 2), np.uint64)
    rows = np.concatenate([f.rows for f in fragments]) if n_frag else np.zeros(0, np.int64)
    multi = np.bincount(comp, weights=n_distinct > 1, minlength=n_comp) > 0
    one = n_distinct == 1
    singles = unique_rows(np.c_[comp[one].astype(np.uint64), single[one]])
    multi |= np.bincount(singles[:, 0].astype(np.int64), minlength=n_comp) > 1
    linked_rows = int(rows[multi[comp]].sum()) if n_frag else 0
    # windows with no usable chunk: distinct ones (by window key) ranked after every component
    lonely_all = np.concatenate([f.lonely for f in fragments])
    if lonely_all.shape[0]:
        kt = np.dtype([("a", "<u8"), ("b", "<u8")])
        uniq_lone = unique_rows(lonely_all[:, :2])
        at = np.searchsorted(np.ascontiguousarray(uniq_lone).view(kt).ravel(),
                             np.ascontiguousarray(lonely_all[:, :2]).view(kt).ravel())
        tuples = np.empty((uniq_lone.shape[0], lonely_all.shape[1] - 2), np.uint64)
        tuples[at] = lonely_all[:, 2:]
        lone_rank = np.empty(uniq_lone.shape[0], np.int64)
        lone_rank[np.lexsort(tuples.T[::-1])] = n_comp + np.arange(uniq_lone.shape[0])
    else:
        uniq_lone, at, lone_rank = np.zeros((0, 2), np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    labels, lone_seen, n_unresolved = [], 0, 0
    for p, f in enumerate(fragments):
        lab = np.empty(f.code.size, np.int64)
        inside = f.code >= 0
        lab[inside] = rank[comp[offset[p] + f.code[inside]]]
        lone = ~inside
        n_unresolved += int(lone.sum())
        if lone.any():
            mine = at[lone_seen : lone_seen + f.lonely.shape[0]]  # this piece's lonely table, in global order
            lab[lone] = lone_rank[mine[-1 - f.code[lone]]]
        lone_seen += f.lonely.shape[0]
        labels.append(lab)
    total = int(sum(f.code.size for f in fragments))
    return JoinedLabels(labels=labels, n_articles=int(n_comp + uniq_lone.shape[0]),
                        n_unresolved_windows=n_unresolved, share_linked=linked_rows / total if total else 0.0)


def link_pieces(pieces: Sequence[PieceKeys], n_buckets: int) -> tuple[JoinedLabels, list[BucketCounts]]:
    """Every step in this process, piece after piece and bucket after bucket (the reference for the Dask driver)."""
    rec1 = [branch_records(p, n_buckets) for p in pieces]
    buckets = [branch_bucket(*[r[b] for r in rec1]) for b in range(n_buckets)]
    branch = all_branches(*buckets)
    frags = [piece_fragments(p, branch, n_buckets) for p in pieces]
    edges = [join_bucket(*[f[1][b] for f in frags]) for b in range(n_buckets)]
    return assemble([f[0] for f in frags], edges), buckets


def joined_recovery(files: Sequence[str], pieces_per_file: Sequence[int], joined: JoinedLabels,
                    buckets: Sequence[BucketCounts], n_null_chunks: int) -> ArticleRecovery:
    """The :class:`ArticleRecovery` of a join (pieces listed file after file, ``pieces_per_file`` of each)."""
    from lvmdiag.data.recover import ArticleRecovery, file_counts

    cuts = np.cumsum([0, *pieces_per_file])
    labels = [np.concatenate(joined.labels[cuts[i] : cuts[i + 1]]) if pieces_per_file[i] else np.zeros(0, np.int64)
              for i in range(len(files))]
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

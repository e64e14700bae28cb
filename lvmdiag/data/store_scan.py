"""Validate an article store's windows in one pass over its chunks, and keep what the bias pass needs.

A store's stride-1 windows hold every chunk vector up to K + 1 times, so the window-level scan of
:func:`lvmdiag.data.validate.scan_sequences` gathers (K + 1) x the corpus and, for a columnar store,
decodes every row group; the temporal-bias pass then decoded them all again. Everything that scan
finds is a property of single chunks (non-finite entries, zero norm, norm range, the target's probe
hash), so :func:`scan_store_windows` reads each chunk once, in file order (one decode per row group),
computes those per chunk and maps them onto the windows: the same counts, mask, warnings and report.

In the same pass it keeps each chunk's dot products with its next K successors in the article
(``bands``: (N, K + 1) float32, 24 bytes a chunk at K = 5). Every entry of a window's (K+1) x (K+1)
Gram matrix is one of them, so :class:`WindowGram` serves the temporal-bias analyzer's blocks
without reading a vector again. The products use the same float32 ``einsum`` reduction over D as
:func:`lvmdiag.analyzers.window_cosines.window_cosines`, so the numbers are bit-identical
(``tests/data/test_store_scan.py`` checks it against the gathered windows).
"""

from __future__ import annotations

from contextlib import closing
from typing import Any, Iterator, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from lvmdiag.data.hashing import hash_rows
from lvmdiag.data.lazy import BlockRows, GatherRows
from lvmdiag.data.validate import (
    _PROBE_COORDS,
    FULL_SCAN_BYTES,
    ScanReport,
    _count_duplicate_windows,
    block_rows_for,
    finish_scan,
    scan_sequences,
)

__all__ = ["WindowGram", "scan_store_windows", "window_gram_of"]


class WindowGram:
    """Dot products of every window's K + 1 vectors, read from per-chunk lagged products.

    Parameters
    ----------
    bands : (N, K + 1) float32; ``bands[r, L]`` is x_r . x_s with s the L-th successor of chunk r in
        its article (L = 0: the squared norm); entries without such a successor are never read
    ctx_rows, tgt_rows : (W, K) and (W,) chunk rows of each window (consecutive successors)
    d : vector dimension
    """

    def __init__(self, bands: np.ndarray, ctx_rows: np.ndarray, tgt_rows: np.ndarray, d: int) -> None:
        self.bands = bands
        self.ctx_rows = ctx_rows
        self.tgt_rows = tgt_rows
        self.n, self.k = (int(x) for x in ctx_rows.shape)
        self.d = int(d)
        self.consecutive = bool(
            np.array_equal(ctx_rows, ctx_rows[:, :1] + np.arange(self.k)) and np.array_equal(tgt_rows, ctx_rows[:, 0] + self.k)
        )
        i, j = np.meshgrid(np.arange(self.k + 1), np.arange(self.k + 1), indexing="ij")
        self._lo = np.minimum(i, j).reshape(-1)  # the earlier vector of each entry ...
        self._lag = np.abs(i - j).reshape(-1)  # ... and how far the other one follows it

    def block(self, start: int, stop: int) -> np.ndarray:
        """(B, K+1, K+1) float32 Gram matrices of windows [start, stop): c_0..c_{K-1} then t."""
        k1 = self.k + 1
        if self.consecutive:  # window rows are r0, r0 + 1, ..., r0 + K
            flat = self.ctx_rows[start:stop, :1] * k1 + (self._lo * k1 + self._lag)
        else:
            rows = np.concatenate([self.ctx_rows[start:stop], self.tgt_rows[start:stop, None]], axis=1)  # (B, K+1)
            flat = np.ascontiguousarray(rows[:, self._lo]) * k1 + self._lag  # (B, (K+1)^2) positions in the bands
        # C order: the cosine arithmetic after it must see the layout window_cosines builds
        return np.take(self.bands.reshape(-1), flat).reshape(-1, k1, k1)


def window_gram_of(seqs: Any) -> WindowGram | None:
    """The :class:`WindowGram` of a SequenceSet's windows when its reader kept one, else None."""
    gram = getattr(seqs.contexts, "window_gram", None)
    if gram is None or getattr(seqs.targets, "window_gram", None) is not gram:
        return None
    if (gram.n, gram.k, gram.d) != (seqs.n, seqs.k, seqs.d):
        return None
    return gram


def _successors(ctx_rows: np.ndarray, tgt_rows: np.ndarray, n_chunks: int) -> np.ndarray | None:
    """(N,) the row of the chunk that follows each chunk in its windows (-1: none), or None when a
    chunk is followed by different chunks in different windows (then no bands are kept)."""
    rows = np.concatenate([ctx_rows, tgt_rows[:, None]], axis=1)
    succ = np.full(n_chunks, -1, dtype=np.int64)
    for i in range(rows.shape[1] - 1):
        succ[rows[:, i]] = rows[:, i + 1]
    for i in range(rows.shape[1] - 1):
        if not np.array_equal(succ[rows[:, i]], rows[:, i + 1]):
            return None
    return succ


def _spans(vectors: Any) -> list[tuple[int, int]]:
    """Row ranges read one at a time: the row groups / record batches of a columnar column, else blocks."""
    if isinstance(vectors, BlockRows):
        return [(int(a), int(b)) for a, b in zip(vectors.starts[:-1], vectors.starts[1:])]
    n, d = vectors.shape
    step = block_rows_for(d * 4)
    return [(s, min(s + step, n)) for s in range(0, n, step)]


def _read_blocks(vectors: Any, spans: list[tuple[int, int]], read_ahead: bool) -> Iterator[tuple[int, int, Any]]:
    """``(start, stop, rows)`` over ``spans``. A columnar store's row groups are decoded one ahead in a
    thread (:meth:`BlockRows.read_ahead`) when nothing else reads the store during the pass (the
    scattered-successor path gathers partners from it, so it reads in turn)."""
    if read_ahead and isinstance(vectors, BlockRows):
        yield from vectors.read_ahead()
        return
    for s, e in spans:
        yield s, e, vectors[s:e]


def _dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    # the reduction window_cosines uses for every Gram entry: identical float32 results
    return np.einsum("nd,nd->n", a, b)


def scan_store_windows(
    vectors: Any,
    ctx_rows: np.ndarray,
    tgt_rows: np.ndarray,
    contexts: GatherRows,
    targets: GatherRows,
    fname: str,
    notes: Sequence[str] = (),
    scan: str = "auto",
    key: str = "vectors",
) -> tuple[ScanReport, WindowGram | None]:
    """The validation of :func:`~lvmdiag.data.validate.scan_sequences` for a store's windows, from one
    read of each chunk, and the :class:`WindowGram` that spares the bias pass a second read.

    Parameters
    ----------
    vectors : (N, D) chunk vectors (array, memory map or :class:`~lvmdiag.data.lazy.BlockRows`)
    ctx_rows, tgt_rows : (W, K), (W,) chunk rows of each window
    contexts, targets : the windows as lazy gathers (read only to confirm duplicate candidates)
    fname, notes : as in ``scan_sequences``
    key : the name of the vector column / array, for the messages
    scan : "auto" and "full" scan every chunk ("auto" samples windows, as ``scan_sequences`` does,
        only when the chunk vectors exceed ``FULL_SCAN_BYTES``); "sample" and "none" are handed to
        ``scan_sequences`` (no bands are kept)

    Returns
    -------
    (ScanReport, WindowGram or None)
    """
    n_chunks, d = (int(x) for x in vectors.shape)
    w, k = (int(x) for x in ctx_rows.shape)
    chunk_bytes = n_chunks * d * np.dtype(vectors.dtype).itemsize
    if scan in ("sample", "none") or (scan == "auto" and chunk_bytes > FULL_SCAN_BYTES):
        return scan_sequences(contexts, targets, fname, key, key, notes, scan=scan), None
    succ = _successors(ctx_rows, tgt_rows, n_chunks)
    consecutive = succ is not None and bool(np.all((succ == -1) | (succ == np.arange(n_chunks) + 1)))
    sq = np.empty(n_chunks, dtype=np.float32)
    nonfinite = np.zeros(n_chunks, dtype=bool)
    probe = np.empty(n_chunks, dtype=np.uint64)
    bands = np.zeros((n_chunks, k + 1), dtype=np.float32) if succ is not None else None
    probe_cols = np.unique(np.linspace(0, d - 1, min(d, _PROBE_COORDS)).astype(np.int64))
    spans = _spans(vectors)
    fast = bands is not None and consecutive
    carry_rows, carry_x = np.empty(0, np.int64), np.empty((0, d), np.float32)  # rows whose successors come later
    # closing(): an error mid-pass stops the read-ahead thread now, not when the generator is collected
    with closing(_read_blocks(vectors, spans, read_ahead=bands is None or fast)) as blocks:
        for s, e, block in blocks:
            x = np.asarray(block, dtype=np.float32)  # (m, D): a view of the decoded row group
            _scan_block(x, s, e, k, sq, nonfinite, probe, probe_cols, bands if fast else None)
            if fast:
                carry_rows, carry_x = _carry_bands(carry_rows, carry_x, x, s, e, k, bands)  # type: ignore[arg-type]
            elif bands is not None:
                _scattered_bands(vectors, x, s, e, succ, bands, k)  # type: ignore[arg-type]
    if bands is not None:
        bands[:, 0] = sq

    # per window: any of its K + 1 chunks non-finite / zero (exactly what the window scan marks)
    bad_nonfinite = nonfinite[tgt_rows] | nonfinite[ctx_rows].any(axis=1)
    zero = sq == 0
    bad_zero = (zero[tgt_rows] | zero[ctx_rows].any(axis=1)) & ~bad_nonfinite
    used = np.zeros(n_chunks, dtype=bool)
    used[ctx_rows.reshape(-1)] = True
    used[tgt_rows] = True
    with np.errstate(invalid="ignore"):
        ok = used & np.isfinite(sq) & (sq > 0)
    norm_min, norm_max = np.inf, -np.inf
    if ok.any():
        norms = np.sqrt(sq[ok].astype(np.float64))
        norm_min, norm_max = float(norms.min()), float(norms.max())
    n_dup = _count_duplicate_windows(contexts, targets, probe[tgt_rows], ~(bad_nonfinite | bad_zero))
    nbytes = w * (k + 1) * d * np.dtype(vectors.dtype).itemsize
    report = finish_scan(bad_nonfinite, bad_zero, norm_min, norm_max, n_dup, None, False, nbytes,
                         fname, key, key, notes)
    gram = WindowGram(bands, ctx_rows, tgt_rows, d) if bands is not None else None
    return report, gram


def _scan_block(x: np.ndarray, s: int, e: int, k: int, sq: np.ndarray, nonfinite: np.ndarray,
                probe: np.ndarray, probe_cols: np.ndarray, bands: np.ndarray | None) -> None:
    """Chunk rows [s, e) (``x``, float32): squared norms, non-finite rows, probe hashes and, with
    ``bands`` (successors are the next rows), the bands of the rows whose K successors are in the block."""
    m = e - s
    inner = max(0, m - k) if bands is not None else 0
    with np.errstate(over="ignore", invalid="ignore"):
        if inner:
            # row j against rows j..j+K in one einsum over a strided view: one read of each row
            # serves all K + 1 products (the same float32 reduction, so the same bits)
            step = x.strides[0]
            succ_view = as_strided(x, shape=(inner, k + 1, x.shape[1]), strides=(step, step, x.strides[1]), writeable=False)
            bands[s : s + inner] = np.einsum("nd,nld->nl", x[:inner], succ_view)  # type: ignore[index]
            sq[s : s + inner] = bands[s : s + inner, 0]  # type: ignore[index]
        rest = x[inner:]
        sq[s + inner : e] = np.einsum("ij,ij->i", rest, rest)
    probe[s:e] = hash_rows(np.ascontiguousarray(x[:, probe_cols]))
    fin = np.isfinite(sq[s:e])
    if not fin.all():
        rows = np.flatnonzero(~fin)
        # an overflowing square sum is not a NaN/Inf entry: confirm on the few rows concerned
        nonfinite[s + rows] = ~np.isfinite(x[rows]).all(axis=1)


def _carry_bands(carry_rows: np.ndarray, carry_x: np.ndarray, x: np.ndarray, s: int, e: int, k: int,
                 bands: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bands of the rows whose successors (row + lag) cross a block boundary: the last K rows of each
    block, carried (copied) until the blocks holding their successors are read. Returns the new carry."""
    tail = max(s, e - k)
    rows = np.r_[carry_rows, np.arange(tail, e)]
    xs = np.concatenate([carry_x, x[tail - s :]]) if carry_rows.size else np.array(x[tail - s :])
    with np.errstate(over="ignore", invalid="ignore"):
        for lag in range(1, k + 1):
            sel = np.flatnonzero((rows + lag >= s) & (rows + lag < e))
            if sel.size:
                bands[rows[sel], lag] = _dots(np.ascontiguousarray(xs[sel]), x[rows[sel] + lag - s])
    keep = rows >= e - k
    return rows[keep], np.ascontiguousarray(xs[keep])


def _scattered_bands(vectors: Any, x: np.ndarray, s: int, e: int, succ: np.ndarray, bands: np.ndarray, k: int) -> None:
    """Bands of rows [s, e) whose successors are not the next rows: gather each lag's partners."""
    part = np.arange(s, e)
    for lag in range(1, k + 1):
        part = np.where(part >= 0, succ[np.maximum(part, 0)], -1)
        have = np.flatnonzero(part >= 0)
        if not have.size:
            break
        partners = np.asarray(vectors[part[have]], dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            bands[s + have, lag] = _dots(np.ascontiguousarray(x[have]), partners)

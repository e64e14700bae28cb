"""Array-likes that read rows on demand, so columnar files are analysed in bounded memory.

A Parquet row group or an Arrow record batch is the unit a columnar file can be read by. Analyzers
index ``SequenceSet.contexts`` / ``targets`` with slices (``iter_blocks``) and occasionally with
sorted row indices (samples, duplicate checks, subsets); :class:`BlockRows` answers both by reading
only the blocks that hold the rows asked for, keeping the last few blocks decoded (one per column
in the usual sequential pass). :class:`GatherRows` serves stride-1 windows of an article store as
``vectors[rows]`` without materialising the (K + 1)-fold window copy.

Both expose ``shape``, ``dtype``, ``ndim``, ``len`` and ``__getitem__`` (int, slice, integer or
bool array, or a tuple whose first entry is one of those); ``np.asarray(x)`` reads everything
(only training, which needs the data in memory anyway, does that).
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Any, Callable, Iterator, Sequence

import numpy as np

__all__ = ["BlockRows", "GatherRows", "is_lazy"]


def is_lazy(arr: Any) -> bool:
    """True for the array-likes of this module (they are not memory maps and not in memory)."""
    return isinstance(arr, (BlockRows, GatherRows))


class _RowIndexed:
    """Shared indexing: turn any supported key into sorted row reads, then apply the rest."""

    shape: tuple[int, ...]
    dtype: np.dtype
    lazy = True

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def __len__(self) -> int:
        return self.shape[0]

    def _take_range(self, start: int, stop: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _take_sorted(self, rows: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _take(self, rows: np.ndarray) -> np.ndarray:
        """Rows in any order (duplicates allowed): read them sorted once, then reorder."""
        if rows.size == 0:
            return np.empty((0,) + self.shape[1:], dtype=self.dtype)
        if rows.size > 1 and np.all(rows[1:] == rows[:-1] + 1):
            return self._take_range(int(rows[0]), int(rows[-1]) + 1)
        uniq, inverse = np.unique(rows, return_inverse=True)
        got = self._take_sorted(uniq)
        return got if uniq.size == rows.size and np.array_equal(uniq, rows) else got[inverse.reshape(-1)]

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: tuple[Any, ...] = ()
        if isinstance(key, tuple):
            key, rest = (key[0] if key else slice(None)), key[1:]
        n = self.shape[0]
        if isinstance(key, (int, np.integer)):
            i = int(key) + (n if key < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"row {key} out of range for {n} rows")
            out = self._take_range(i, i + 1)[0]
        elif isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step == 1:
                out = self._take_range(start, max(start, stop))
            else:
                out = self._take(np.arange(start, stop, step, dtype=np.int64))
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                if idx.shape != (n,):
                    raise IndexError(f"boolean index of shape {idx.shape} does not match {n} rows")
                idx = np.flatnonzero(idx)
            elif idx.dtype.kind not in "iu":
                raise IndexError(f"rows must be integers, a slice or a boolean mask; got {idx.dtype}")
            flat = idx.reshape(-1).astype(np.int64)
            flat = np.where(flat < 0, flat + n, flat)
            if flat.size and (flat.min() < 0 or flat.max() >= n):
                raise IndexError(f"row index out of range for {n} rows")
            out = self._take(flat).reshape(idx.shape + self.shape[1:])
        if rest:
            lead = (slice(None),) * (out.ndim - len(self.shape) + 1) if not isinstance(key, (int, np.integer)) else ()
            out = out[lead + rest]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._take_range(0, self.shape[0])
        return out if dtype is None else out.astype(dtype, copy=False)

    def astype(self, dtype: Any, copy: bool = True) -> np.ndarray:
        return np.asarray(self).astype(dtype, copy=copy)

    def copy(self) -> np.ndarray:
        """Every row, read into memory (as ``ndarray.copy``)."""
        return np.array(self)

    def tolist(self) -> list:
        return np.asarray(self).tolist()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype})"


class BlockRows(_RowIndexed):
    """Rows of one column stored in consecutive blocks (row groups / record batches), read on demand.

    Parameters
    ----------
    sizes : rows per block, in file order
    read_block : ``read_block(i)`` returns block ``i`` as an array of shape ``(sizes[i],) + row_shape``
        (zero-copy where the file layout allows); it validates what it reads and raises InputError
    row_shape : shape of one row, e.g. ``(D,)`` or ``(K, D)``
    dtype : dtype of what ``read_block`` returns
    cache_blocks : decoded blocks kept (the last ones used); 2 covers a block boundary in a pass

    ``travels_by_path`` is True when a pickled copy holds only file paths and a read plan (a Parquet
    column): the Dask engine then cuts the rows into several parts; other sources pickle their data.
    """

    travels_by_path: bool = False

    def __init__(
        self,
        sizes: Sequence[int],
        read_block: Callable[[int], np.ndarray],
        row_shape: tuple[int, ...],
        dtype: np.dtype,
        cache_blocks: int = 2,
    ) -> None:
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.starts = np.r_[0, np.cumsum(self.sizes)].astype(np.int64)
        self.shape = (int(self.starts[-1]),) + tuple(int(x) for x in row_shape)
        self.dtype = np.dtype(dtype)
        self._read = read_block
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_blocks = max(1, int(cache_blocks))

    @property
    def n_blocks(self) -> int:
        return int(self.sizes.size)

    def block(self, i: int) -> np.ndarray:
        """Block ``i`` (from the cache when it was read last)."""
        hit = self._cache.get(i)
        if hit is not None:
            self._cache.move_to_end(i)
            return hit
        arr = self._read(i)
        if arr.flags.writeable:  # callers get views of cached blocks: never let one be changed in place
            arr.flags.writeable = False
        self._cache[i] = arr
        while len(self._cache) > self._cache_blocks:
            self._cache.popitem(last=False)
        return arr

    def __getstate__(self) -> dict:
        """Pickled (sent to a Dask worker) without its decoded blocks: they are read again there."""
        return {**self.__dict__, "_cache": OrderedDict()}

    def read_ahead(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """Every block in file order as ``(start, stop, rows)``, the next one decoded in a background
        thread while the caller works on this one.

        Decoding (pyarrow) and numpy's kernels release the GIL, so a pass that computes on each block
        costs about max(read, compute) instead of their sum; two decoded blocks are alive at once.
        Blocks come from ``read_block`` (or the cache, for a block decoded already), and the caller must
        not read this object elsewhere while iterating (``read_block`` need not be thread-safe).
        """
        from concurrent.futures import ThreadPoolExecutor

        n = self.n_blocks
        if n == 0:
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lvmdiag-read-ahead") as pool:

            def start(i: int) -> Any:  # a block decoded already (cached) is not decoded again
                hit = self._cache.get(i)
                return hit if hit is not None else pool.submit(self._read, i)

            pending = start(0)
            try:
                for i in range(n):
                    # a read error surfaces here, in the caller's thread
                    arr = pending if isinstance(pending, np.ndarray) else pending.result()
                    if i + 1 < n:
                        pending = start(i + 1)
                    if arr.flags.writeable:
                        arr.flags.writeable = False
                    yield int(self.starts[i]), int(self.starts[i + 1]), arr
            finally:
                if not isinstance(pending, np.ndarray):
                    pending.cancel()  # the caller stopped early: do not decode on its behalf

    def _block_of(self, row: int) -> int:
        return int(np.searchsorted(self.starts, row, side="right") - 1)

    def _take_range(self, start: int, stop: int) -> np.ndarray:
        if stop <= start:
            return np.empty((0,) + self.shape[1:], dtype=self.dtype)
        first, last = self._block_of(start), self._block_of(stop - 1)
        if first == last:  # the common case: a view into one decoded block
            b0 = int(self.starts[first])
            return self.block(first)[start - b0 : stop - b0]
        out = np.empty((stop - start,) + self.shape[1:], dtype=self.dtype)
        for b in range(first, last + 1):
            b0, b1 = int(self.starts[b]), int(self.starts[b + 1])
            lo, hi = max(start, b0), min(stop, b1)
            out[lo - start : hi - start] = self.block(b)[lo - b0 : hi - b0]
        return out

    def _take_sorted(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((rows.size,) + self.shape[1:], dtype=self.dtype)
        blocks = np.searchsorted(self.starts, rows, side="right") - 1
        cuts = np.r_[0, np.flatnonzero(np.diff(blocks)) + 1, rows.size]
        for a, b in zip(cuts[:-1], cuts[1:]):
            blk = int(blocks[a])
            out[a:b] = self.block(blk)[rows[a:b] - self.starts[blk]]
        return out


class GatherRows(_RowIndexed):
    """``source[index[i]]`` for each row i, read on demand: window contexts / targets of a store.

    Parameters
    ----------
    source : (N, D) vectors (an array, memory map or :class:`BlockRows`)
    index : (W,) or (W, K) int64 rows of ``source`` per output row

    ``window_gram`` is set by the store reader when its validation pass kept every window's dot
    products (:class:`lvmdiag.data.store_scan.WindowGram`), so the bias pass need not gather.
    """

    window_gram: Any = None

    def __init__(self, source: Any, index: np.ndarray) -> None:
        self.source = source
        self.index = np.asarray(index, dtype=np.int64)
        self.shape = (int(self.index.shape[0]),) + tuple(self.index.shape[1:]) + tuple(source.shape[1:])
        self.dtype = np.dtype(source.dtype)
        self._pool: list[np.ndarray] = []

    def __getstate__(self) -> dict:
        """Pickled without its output buffers (scratch space, up to ~100 MB each)."""
        return {**self.__dict__, "_pool": []}

    def _gather(self, idx: np.ndarray) -> np.ndarray:
        flat = idx.reshape(-1)
        row_shape = tuple(self.source.shape[1:])
        if not flat.size:
            return np.empty(idx.shape + row_shape, self.dtype)
        lo, hi = int(flat.min()), int(flat.max()) + 1
        if hi - lo <= 2 * flat.size + 4096:
            # windows of a sorted store touch a narrow run of rows: read the run (a view of a cached
            # block, or one copy across a block boundary) and index into it; no sort of the indices
            got = np.take(np.asarray(self.source[lo:hi]), flat - lo, axis=0, out=self._out(flat.size), mode="clip")
        else:
            got = np.asarray(self.source[flat])
        return got.reshape(idx.shape + row_shape)

    def _out(self, rows: int) -> np.ndarray:
        """An output buffer of ``rows`` rows: a previous one when nobody holds it any more.

        A gathered block is a fresh allocation of up to ~100 MB, and faulting in fresh pages costs
        as much as the copy itself. Two buffers alternate (a ``for`` loop still holds the previous
        block while the next is read); one is reused only when its reference count says that no
        caller holds it or a view of it (views keep their base alive), so a block a caller kept is
        never overwritten.
        """
        row_shape = tuple(self.source.shape[1:])
        need = rows * int(np.prod(row_shape, dtype=np.int64))
        pool = self._pool
        for i in range(len(pool)):
            # references: the pool's slot and getrefcount's argument; any more are a caller's
            if pool[i].size >= need and sys.getrefcount(pool[i]) <= 2:
                buf = pool[i]
                break
        else:
            buf = np.empty(max(need, 1), dtype=self.dtype)
            pool.append(buf)
            if len(pool) > 2:
                pool.pop(0)  # forgotten here; alive only while a caller holds it
        return buf[:need].reshape((rows,) + row_shape)

    def _take_range(self, start: int, stop: int) -> np.ndarray:
        return self._gather(self.index[start:stop])

    def _take_sorted(self, rows: np.ndarray) -> np.ndarray:
        return self._gather(self.index[rows])

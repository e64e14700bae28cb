"""The lazy array-likes behave like the numpy array they stand for, read few blocks, and never hand
out a buffer that a caller still holds."""

from __future__ import annotations

import numpy as np
import pytest

from lvmdiag.data.lazy import BlockRows, GatherRows


def _blocks(arr, sizes):
    starts = np.r_[0, np.cumsum(sizes)]
    reads = []

    def read(i):
        reads.append(i)
        return arr[starts[i] : starts[i + 1]].copy()

    return BlockRows(sizes, read, arr.shape[1:], arr.dtype), reads


def test_block_rows_index_like_numpy():
    arr = np.random.default_rng(0).standard_normal((50, 3, 2)).astype(np.float32)
    rows, _ = _blocks(arr, [7, 7, 1, 20, 15])
    assert rows.shape == arr.shape and rows.ndim == 3 and len(rows) == 50
    keys = [slice(None), slice(3, 30), slice(6, 8), slice(40, 999), slice(None, None, 3), slice(20, 5),
            np.array([49, 0, 7, 7, 14, 3]), np.arange(50) % 2 == 0, np.array([[1, 2], [30, 31]]), -1, 14,
            (slice(None), -1, slice(None)), (np.array([3, 40]), 0)]
    for key in keys:
        assert np.array_equal(rows[key], arr[key]), key
    assert np.array_equal(np.asarray(rows), arr)
    assert np.array_equal(np.asarray(rows, dtype=np.float64), arr.astype(np.float64))
    with pytest.raises(IndexError):
        rows[50]
    with pytest.raises(IndexError):
        rows[np.array([0, 51])]


def test_block_rows_reads_only_needed_blocks_and_caches_two():
    arr = np.arange(40, dtype=np.float32).reshape(20, 2)
    rows, reads = _blocks(arr, [5, 5, 5, 5])
    rows[0:3]
    rows[3:5]
    rows[4:7]  # crosses into block 1
    assert reads == [0, 1]
    rows[12:13]
    rows[0:1]  # block 0 fell out of the two-block cache
    assert reads == [0, 1, 2, 0]
    view = rows[0:2]
    assert not view.flags.writeable  # cached blocks cannot be changed through a view


def test_read_ahead_yields_every_block_once_and_decodes_the_next_while_the_caller_works():
    import threading

    arr = np.arange(60, dtype=np.float32).reshape(30, 2)
    sizes = [4, 11, 1, 14]
    starts = np.r_[0, np.cumsum(sizes)]
    started = [threading.Event() for _ in sizes]
    threads = {}

    def read(i):
        started[i].set()
        threads[i] = threading.current_thread().name
        return arr[starts[i] : starts[i + 1]].copy()

    rows = BlockRows(sizes, read, (2,), np.float32)
    got = []
    for s, e, block in rows.read_ahead():
        i = len(got)
        if i + 1 < len(sizes):  # block i + 1 is being read before the caller is done with block i
            assert started[i + 1].wait(timeout=30)
        assert not block.flags.writeable
        got.append((s, e, block))
    assert [(s, e) for s, e, _ in got] == list(zip(starts[:-1], starts[1:]))
    assert np.array_equal(np.concatenate([b for _, _, b in got]), arr)
    assert sorted(threads) == [0, 1, 2, 3] and threads[0] != threading.current_thread().name


def test_read_ahead_raises_the_read_error_and_stops_early_without_reading_on():
    from lvmdiag.errors import InputError

    arr = np.zeros((20, 2), np.float32)
    reads = []

    def read(i):
        reads.append(i)
        if i == 2:
            raise InputError("block 2 is bad")
        return arr[5 * i : 5 * i + 5].copy()

    rows = BlockRows([5, 5, 5, 5], read, (2,), np.float32)
    with pytest.raises(InputError, match="block 2 is bad"):
        for _ in rows.read_ahead():
            pass
    reads.clear()
    it = rows.read_ahead()
    next(it)
    it.close()  # the caller stops after block 0: at most the block already asked for is read
    assert reads in ([0], [0, 1])


def test_gather_rows_reuses_a_buffer_only_when_released():
    src = np.random.default_rng(1).standard_normal((100, 4)).astype(np.float32)
    index = np.arange(90)[:, None] + np.arange(5)[None]
    g = GatherRows(src, index)
    assert g.shape == (90, 5, 4)
    for key in (slice(0, 10), np.array([5, 1, 80]), slice(None), (slice(None), -1)):
        assert np.array_equal(g[key], src[index][key])
    kept = g[0:10]
    snapshot = kept.copy()
    last = g[10:20][:, -1]  # only a view of the block survives
    g[20:30]
    g[30:40]
    assert np.array_equal(kept, snapshot)
    assert np.array_equal(last, src[index[10:20, -1]])
    first = g[40:50]
    addr = first.__array_interface__["data"][0]
    del first
    again = g[50:60]
    assert again.__array_interface__["data"][0] == addr  # released: reused
    assert np.array_equal(again, src[index[50:60]])


def test_gather_rows_in_a_block_loop_alternates_two_buffers():
    from lvmdiag.data.sequences import SequenceSet

    src = np.random.default_rng(2).standard_normal((300, 6)).astype(np.float32)
    index = np.arange(290)[:, None] + np.arange(4)[None]
    seq = SequenceSet(GatherRows(src, index), GatherRows(src, index[:, -1] + 1))
    addrs, kept = set(), []
    for start, ctx, tgt in seq.iter_blocks(32):
        assert np.array_equal(ctx, src[index[start : start + 32]])
        assert np.array_equal(tgt, src[index[start : start + 32, -1] + 1])
        addrs.add(ctx.__array_interface__["data"][0])
        if start == 64:
            kept.append(ctx)  # a block kept by the caller is never overwritten
    assert len(addrs) <= 3
    assert np.array_equal(kept[0], src[index[64:96]])

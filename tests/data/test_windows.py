"""window_indices against an obvious loop, with shuffled rows and a chunk index."""

import numpy as np
import pytest

from lvmdiag.data.windows import window_indices
from lvmdiag.errors import InputError


def _slow_windows(article_ids, chunk_index, k):
    out = []
    for a in sorted(set(article_ids.tolist())):
        rows = [r for r in range(len(article_ids)) if article_ids[r] == a]
        rows.sort(key=lambda r: chunk_index[r])
        for j in range(len(rows) - k):
            out.append((tuple(rows[j : j + k]), rows[j + k], a))
    return out


def test_matches_loop_on_shuffled_store():
    rng = np.random.default_rng(0)
    lengths = [3, 9, 6, 1, 12]
    arts = np.repeat(np.arange(5) * 10, lengths)
    chunks = np.concatenate([np.arange(n) for n in lengths])
    perm = rng.permutation(arts.size)
    arts, chunks = arts[perm], chunks[perm]
    ctx, tgt, art = window_indices(arts, 4, chunks)
    got = [(tuple(c), t, a) for c, t, a in zip(ctx.tolist(), tgt.tolist(), art.tolist())]
    assert got == _slow_windows(arts, chunks, 4)


def test_row_order_when_no_chunk_index_and_empty_input():
    ctx, tgt, art = window_indices(np.array([5, 5, 5, 7, 7]), 1)
    assert ctx.tolist() == [[0], [1], [3]] and tgt.tolist() == [1, 2, 4] and art.tolist() == [5, 5, 7]
    assert window_indices(np.array([], dtype=np.int64), 3)[0].shape == (0, 3)
    with pytest.raises(InputError):
        window_indices(np.array([1, 1]), 0)


@pytest.mark.parametrize("sort_rows", [True, False])
def test_matches_loop_on_stores_in_order_and_with_string_ids(sort_rows):
    rng = np.random.default_rng(1)
    lengths = [7, 2, 11, 5]
    arts = np.repeat(np.array(["a", "b", "c", "d"]), lengths)
    chunks = np.concatenate([rng.permutation(n) if not sort_rows else np.arange(n) for n in lengths])
    ctx, tgt, art = window_indices(arts, 3, chunks)
    got = [(tuple(c), t, a) for c, t, a in zip(ctx.tolist(), tgt.tolist(), art.tolist())]
    assert got == _slow_windows(arts, chunks, 3)
    assert ctx.dtype == tgt.dtype == np.int64 and ctx.flags.c_contiguous


def test_unsorted_order_is_none_exactly_when_the_sort_is_the_identity():
    from lvmdiag.data.windows import unsorted_order

    rng = np.random.default_rng(2)
    for trial in range(300):
        n = int(rng.integers(0, 12))
        ids = rng.integers(0, 3, n)
        chunk = rng.integers(0, 3, n) if trial % 2 else None
        if trial % 3 == 0:  # many inputs in order already, ties included
            key = ids * 10 + (0 if chunk is None else chunk)
            o = np.argsort(key, kind="stable")
            ids, chunk = ids[o], None if chunk is None else chunk[o]
        ref = np.argsort(ids, kind="stable") if chunk is None else np.lexsort((chunk, ids))
        got = unsorted_order(ids, chunk)
        if got is None:
            assert np.array_equal(ref, np.arange(n))
        else:
            assert np.array_equal(got, ref) and not np.array_equal(ref, np.arange(n))

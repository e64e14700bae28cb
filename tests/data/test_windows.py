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

"""Read-ahead hints: only top-level memory maps get them, and hints never change data or fail."""

import numpy as np

from lvmdiag.analyzers._readahead import ReadAhead


def test_hints_only_for_top_level_memmaps(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(60, dtype=np.float32).reshape(20, 3))
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    with ReadAhead(mapped, mapped[5:], np.ones((4, 2))) as ahead:
        assert len(ahead._targets) == 1  # the view and the in-memory array are skipped
        ahead.advise(0, 10)
        ahead.advise(10, 20)
        ahead.advise(20, 20)  # empty range: harmless
    assert ahead._targets == []
    assert float(mapped.sum()) == float(np.arange(60).sum())

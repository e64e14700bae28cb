"""The leakage figure renders with and without article information."""

import numpy as np

from lvmdiag import synthetic as syn
from lvmdiag.analyzers.leakage import analyze_leakage
from lvmdiag.plots.leakage import plot_leakage


def test_plot_leakage(tmp_path):
    st = syn.make_store(n_articles=30, d=16, rng=0)
    sp = syn.make_splits(st, k=5, ratios=(0.6, 0.2, 0.2), names=("train", "val", "ood"), n_duplicated=2, rng=1)
    res = analyze_leakage(sp)
    plot_leakage(res, tmp_path / "a.png")
    blocks = analyze_leakage(sp, groups=type("G", (), {"labels": [np.arange(s.n) // 7 for s in sp.values()],
                                                       "method": "contiguous-blocks", "note": ""})())
    assert blocks.split("val").n_shared_articles is None
    plot_leakage(blocks, tmp_path / "b.png")
    for name in ("a.png", "b.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000

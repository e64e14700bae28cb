"""The direction figure renders for full, partial (no classifier) and single-split results."""

import numpy as np

from lvmdiag import synthetic as syn
from lvmdiag.analyzers.direction import analyze_direction
from lvmdiag.plots.direction import plot_direction


def _png_ok(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_plot_direction_full_and_partial(tmp_path):
    st = syn.make_store(n_articles=30, d=16, drift=0.03, rng=0)
    sp = syn.make_splits(st, k=5, ratios=(0.6, 0.2, 0.2), names=("train", "val", "ood"), rng=1)
    res = analyze_direction(sp, groups=[s.article_ids for s in sp.values()], n_permutations=19, n_bootstrap=20)
    plot_direction(res, tmp_path / "full.png")
    assert _png_ok(tmp_path / "full.png")
    tiny = syn.store_windows(syn.make_store(n_articles=3, d=8, rng=0), split="train")
    res2 = analyze_direction(tiny, groups=[tiny.article_ids], n_permutations=9, n_bootstrap=9)
    assert res2.split("train").classifier is None
    plot_direction(res2, tmp_path / "partial.png")
    assert _png_ok(tmp_path / "partial.png")
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temporary behind
    assert np.isfinite(res.split("val").signed.statistic)

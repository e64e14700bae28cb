"""The bias figure: a PNG for one result and for a comparison, written atomically."""

import numpy as np
import pytest

from lvmdiag.errors import LvmdiagWarning

from lvmdiag.analyzers.temporal_bias import analyze_bias, compare_bias
from lvmdiag.plots.bias import plot_bias
from lvmdiag.synthetic import make_splits, make_store, store_windows

PNG = b"\x89PNG\r\n\x1a\n"


def test_plot_single_result_and_comparison(tmp_path):
    store = make_store(n_articles=20, d=16, rng=0)
    seqs = store_windows(store, 4)
    one = analyze_bias(seqs, groups=seqs.article_ids, n_resamples=50)
    plot_bias(one, tmp_path / "one.png")
    splits = make_splits(store, 4, rng=0)
    comp = compare_bias(splits, groups={k: v.article_ids for k, v in splits.items()}, n_resamples=50)
    plot_bias(comp, tmp_path / "comp.png")
    for name in ("one.png", "comp.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["comp.png", "one.png"]  # no temporary left over


def test_plot_without_intervals(tmp_path):
    store = make_store(n_articles=1, d=8, length=30, rng=0)  # one article: no interval possible
    seqs = store_windows(store, 3)
    with pytest.warns(LvmdiagWarning, match="single article"):
        res = analyze_bias(seqs, groups=np.zeros(seqs.n, int), n_resamples=20)
    assert res.delta.ci is None and res.per_article_delta.mean_ci is None
    plot_bias(res, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG
    assert "—" in res.to_markdown()

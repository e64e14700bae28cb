"""The divergence figure: one row per compared split, written atomically (no temporary left over)."""

from lvmdiag import synthetic as syn
from lvmdiag.analyzers.divergence import analyze_divergence
from lvmdiag.plots.divergence import plot_divergence

FAST = dict(n_permutations=20, n_bootstrap=20, rff_features=32, bandwidth_subsample=100, n_folds=3)


def test_plot_divergence_one_and_two_comparisons(tmp_path):
    st = syn.make_store(n_articles=30, d=8, rng=0)
    two = syn.make_splits(st, k=4, ratios=(0.6, 0.4), rng=1)
    three = syn.make_splits(st, k=4, ratios=(0.6, 0.2, 0.2), names=("train", "val", "ood"), rng=1)
    plot_divergence(analyze_divergence(two, rng=0, **FAST), tmp_path / "two.png")
    plot_divergence(analyze_divergence(three, rng=0, **FAST), tmp_path / "three.png")
    sizes = {}
    for name in ("two.png", "three.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        sizes[name] = len(data)
    assert sizes["three.png"] > sizes["two.png"]  # a second row of panels for the second comparison
    assert sorted(p.name for p in tmp_path.iterdir()) == ["three.png", "two.png"]

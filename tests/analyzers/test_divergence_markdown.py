"""The divergence section's tables: one row per quantity (issue 14.2)."""

import re

from lvmdiag.analyzers.divergence import analyze_divergence
from lvmdiag.synthetic import make_splits, make_store


def test_mean_table_lists_each_position_cosine_once():
    k = 3
    splits = make_splits(make_store(n_articles=16, d=8, rho=0.8, rng=1), k, by="article", ratios=(0.5, 0.5),
                         names=("train", "val"), rng=0)
    md = analyze_divergence(splits, n_permutations=9, n_bootstrap=9, rff_features=16, rng=0).to_markdown()
    table = md[md.index("| mean of"):].split("\n\n")[0]
    for i in range(k):
        rows = [line for line in table.splitlines() if re.match(rf"\| cos\(c_{i}, ?t\) ", line)]
        assert len(rows) == 1, rows

"""The report renders what the assignment and the read-back verification say, nothing else."""

from __future__ import annotations

import numpy as np

from lvmdiag.resplit.assign import assign_groups
from lvmdiag.resplit.report import render_report
from lvmdiag.resplit.strata import ArticleStats, build_strata
from lvmdiag.resplit.verify import row_hashes, verify_outputs
from lvmdiag.synthetic import make_splits, make_store


def _setup():
    store = make_store(n_articles=60, d=8, length=(8, 40), rng=0)
    before = make_splits(store, k=4, ratios=(0.8, 0.2), names=("train", "val"), by="window", rng=1)
    pooled_ids = np.concatenate([s.article_ids for s in before.values()])
    sizes = np.bincount(pooled_ids)
    stats = ArticleStats(sizes, np.zeros(sizes.size))
    strata = build_strata(stats, ["length"], min_articles=10)
    a = assign_groups(sizes, (0.5, 0.5), strata.codes, rng=0)
    after = {}
    for s, name in enumerate(("a", "b")):
        parts = [seq.subset(a.split_of_group[seq.article_ids] == s) for seq in before.values()]
        after[name] = parts[0].__class__(
            np.concatenate([p.contexts for p in parts]), np.concatenate([p.targets for p in parts]),
            np.concatenate([p.article_ids for p in parts]), "given", split=name,
        )
    exp = {n: row_hashes(s).window for n, s in after.items()}
    groups = {n: np.flatnonzero(a.split_of_group == i) for i, n in enumerate(after)}
    v = verify_outputs(after, exp, a.ratios, a.tolerance, groups)
    return before, after, a, strata, v, stats


def test_report_numbers_come_from_the_assignment_and_verification():
    before, after, a, strata, v, stats = _setup()
    md = render_report(
        names=("a", "b"), ratios=a.ratios, assignment=a, strata=strata, verification=v,
        before={n: s.n / sum(x.n for x in before.values()) for n, s in before.items()},
        in_sets=before, in_labels={n: s.article_ids for n, s in before.items()}, outputs=after,
        out_labels={n: s.article_ids for n, s in after.items()}, group_method="given", form="rebuilt",
        stats=stats, seed=0, analyses=False,
    )
    assert v.passed and md.count("| PASS |") == 4
    for i, name in enumerate(("a", "b")):
        assert f"| {name} | {v.n_windows[i]} | 50.00% | {100 * v.achieved[i]:.2f}% |" in md
    # per-stratum "after" shares equal the assignment's stratum shares
    for h, label in enumerate(strata.labels):
        row = next(line for line in md.splitlines() if line.startswith(f"| {label} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[-2:] == [f"{100 * x:.2f}%" for x in a.stratum_shares[h]]
    # every before article straddles: windows were cut by window, not by article
    assert "articles also in another input" in md
    assert "not run (analyses=False)" in md


def test_report_says_when_stratification_collapsed_to_one_stratum():
    before, after, a, strata, v, stats = _setup()
    kw = dict(names=("a", "b"), ratios=a.ratios, assignment=a, verification=v, before={n: 0.5 for n in before},
              in_sets=before, in_labels={n: s.article_ids for n, s in before.items()}, outputs=after,
              out_labels={n: s.article_ids for n, s in after.items()}, group_method="given", form="rebuilt",
              stats=stats, seed=0, analyses=False)
    assert strata.n_strata > 1 and "plain window-ratio group split" not in render_report(strata=strata, **kw)
    one = build_strata(stats, ["length"], min_articles=10_000)
    assert one.n_strata == 1 and "plain window-ratio group split" in render_report(strata=one, **kw)

"""The two-round join of article recovery equals ``recover_articles`` on any cut into pieces and buckets.

The join is what runs on Dask (:mod:`lvmdiag.engine.dask_recovery`); here its steps run one after
another in this process, so many random corpora and cuts are cheap. Equality is exact (labels are
integers, shares are ratios of counts).
"""

from __future__ import annotations

import numpy as np

from lvmdiag.data.recover import recover_articles, slot_keys
from lvmdiag.data.recover_join import joined_recovery, link_pieces, piece_keys
from lvmdiag.data.sequences import SequenceSet

K, D = 3, 4


def messy_corpus(rng: np.random.Generator) -> list[SequenceSet]:
    """Id-less stride-1 windows of random articles in 1-3 files, with every hard case planted.

    Boilerplate (a chunk copied from a small pool: branch points), zero and NaN chunks (never linked),
    windows that consist of such chunks only (left unresolved), an article ingested twice (identical
    windows, possibly in two files), and files shuffled or in order. The planted rate varies by corpus.
    """
    arts = [rng.standard_normal((rng.integers(1, 14), D)).astype(np.float32) for _ in range(rng.integers(1, 25))]
    pool = np.concatenate(arts)[:6].copy()
    rate = rng.choice([0.02, 0.1, 0.4])
    for a in arts:
        u = rng.random(len(a))
        a[u < rate] = pool[rng.integers(len(pool), size=int((u < rate).sum()))]
        a[(u >= rate) & (u < rate + 0.03)] = 0
        a[(u >= rate + 0.03) & (u < rate + 0.04), 0] = np.nan
    if len(arts) > 1 and rng.random() < 0.5:
        arts.append(arts[0].copy())
    wins = [np.stack([a[s : s + K + 1] for s in range(len(a) - K)]) for a in arts if len(a) > K]
    w = np.concatenate(wins) if wins else np.zeros((0, K + 1, D), np.float32)
    n_files = int(rng.integers(1, 4))
    f = rng.integers(0, n_files, len(w))
    out = []
    for i in range(n_files):
        x = w[f == i]
        if rng.random() < 0.5:
            x = x[rng.permutation(len(x))]
        out.append(SequenceSet(np.ascontiguousarray(x[:, :K]), np.ascontiguousarray(x[:, K]), split=f"s{i}"))
    return out


def joined(files: list[SequenceSet], rng: np.random.Generator, n_buckets: int):
    """The join's recovery of ``files``, each cut into 1-4 pieces at random rows (empty pieces included)."""
    pieces, per_file = [], []
    for s in files:
        keys, null = slot_keys(s)
        w = s.k + 1
        bounds = np.r_[0, np.sort(rng.integers(0, s.n + 1, rng.integers(0, 4))), s.n]
        per_file.append(bounds.size - 1)
        pieces += [piece_keys(keys[lo * w : hi * w], null[lo * w : hi * w], w) for lo, hi in zip(bounds[:-1], bounds[1:])]
    labels, numbering, buckets, n_null = link_pieces(pieces, n_buckets)
    return joined_recovery([s.name for s in files], per_file, labels, numbering, buckets, n_null)


def assert_same_recovery(got, want) -> None:
    assert got.to_dict() == want.to_dict()
    for a, b in zip(got.labels, want.labels):
        np.testing.assert_array_equal(a, b)


def test_the_join_equals_recover_articles_on_random_corpora_pieces_and_buckets():
    seen = dict(branch=0, unresolved=0, duplicate=0, shared=0)
    for seed in range(250):
        rng = np.random.default_rng(seed)
        files = messy_corpus(rng)
        want = recover_articles(files)
        try:
            assert_same_recovery(joined(files, rng, int(rng.integers(1, 6))), want)
        except AssertionError as exc:
            raise AssertionError(f"corpus seed {seed}: {exc}") from None
        seen["branch"] += want.n_ambiguous > 0
        seen["unresolved"] += want.n_unresolved_windows > 1
        seen["duplicate"] += want.n_duplicate_windows > 0
        seen["shared"] += want.n_shared_articles > 0
    assert min(seen.values()) >= 50, seen  # every hard case was exercised many times, not once


def test_the_join_finds_the_planted_articles_across_pieces():
    """Independent of recover_articles: 6 clean articles cut across 2 files and 5 pieces come back as 6,
    and two articles sharing one boilerplate chunk stay apart (it is a branch point)."""
    rng = np.random.default_rng(3)
    arts = [rng.standard_normal((12, D)).astype(np.float32) for _ in range(6)]
    arts[4][5] = arts[5][7]  # one shared paragraph
    wins = np.concatenate([np.stack([a[s : s + K + 1] for s in range(len(a) - K)]) for a in arts])
    truth = np.repeat(np.arange(6), 12 - K)
    order = rng.permutation(len(wins))
    wins, truth = wins[order], truth[order]
    half = len(wins) // 2
    files = [SequenceSet(np.ascontiguousarray(x[:, :K]), np.ascontiguousarray(x[:, K]), split=name)
             for name, x in (("train", wins[:half]), ("val", wins[half:]))]
    rec = joined(files, np.random.default_rng(0), n_buckets=3)
    labels = np.concatenate(rec.labels)
    assert rec.n_articles == 6 and rec.n_ambiguous == 1 and rec.n_unresolved_windows == 0
    assert np.unique(np.c_[labels, truth], axis=0).shape[0] == 6  # the same partition as the truth
    assert rec.share_linked == 1.0 and rec.n_shared_articles == 6


def test_spanning_forest_keeps_the_components_with_at_most_one_edge_per_fragment():
    """Checked against scipy's components of the full edge set; forests of forests (the tree reduction) too."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from lvmdiag.data.recover_join import spanning_forest

    rng = np.random.default_rng(0)
    nodes = np.c_[rng.integers(0, 5, 300), rng.integers(0, 40, 300)]  # (piece, fragment) pairs
    edges = np.c_[nodes[rng.integers(0, 300, 500)], nodes[rng.integers(0, 300, 500)]].astype(np.int64)

    def partition(e):
        ids = e[:, [0, 2]] * 1000 + e[:, [1, 3]]
        n = 5 * 1000
        return connected_components(coo_matrix((np.ones(len(e)), (ids[:, 0], ids[:, 1])), shape=(n, n)),
                                    directed=False)[1]

    whole = spanning_forest(edges)
    halves = spanning_forest(spanning_forest(edges[:250]), spanning_forest(edges[250:]))
    truth = partition(edges)
    for forest in (whole, halves):
        got = partition(forest)
        assert np.unique(np.c_[got, truth], axis=0).shape[0] == np.unique(truth).size == np.unique(got).size
        children = forest[:, 2] * 1000 + forest[:, 3]
        assert np.unique(children).size == children.size  # one edge per fragment at most
    assert spanning_forest().shape == (0, 4)


def test_a_bucket_count_below_one_is_refused_in_one_line():
    import pytest

    from lvmdiag.errors import InputError

    files = messy_corpus(np.random.default_rng(1))
    for bad in (0, -2, 1.5, True):
        with pytest.raises(InputError, match="n_buckets must be a whole number >= 1"):
            joined(files, np.random.default_rng(0), bad)

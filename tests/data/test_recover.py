"""Article recovery: finds exactly the planted articles, never merges through duplicated chunks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lvmdiag.data import load_sequences
from lvmdiag.data.recover import recover_articles
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.synthetic import SyntheticStore, make_splits, make_store

from data_helpers import FIXTURES


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when two label arrays define the same partition (equal up to relabelling)."""
    pairs = np.unique(np.c_[a, b], axis=0).shape[0]
    return pairs == np.unique(a).size == np.unique(b).size


def split_pair(store, seed, names=("train", "val"), ratios=(0.8, 0.2)):
    """The same random by-window split twice: without ids (input) and with ids (truth)."""
    blind = make_splits(store, k=5, ratios=ratios, names=names, by="window", keep_ids=False, rng=seed)
    truth = make_splits(store, k=5, ratios=ratios, names=names, by="window", keep_ids=True, rng=seed)
    return list(blind.values()), np.concatenate([s.article_ids for s in truth.values()])


def slow_recovery(seqsets: list[SequenceSet]):
    """Obvious loop version of the documented rule, for small inputs."""
    windows = []
    for s in seqsets:
        for i in range(s.n):
            vecs = [*s.contexts[i], s.targets[i]]
            windows.append(tuple(None if not (np.isfinite(v).all() and (v != 0).any()) else v.tobytes() for v in vecs))
    distinct = sorted(set(windows), key=windows.index)
    at = {}
    for w in distinct:
        for pos, ch in enumerate(w):
            if ch is not None:
                at.setdefault((ch, pos), set()).add(w)
    branch = {ch for (ch, pos), ws in at.items() if len(ws) > 1}
    parent = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for w in distinct:
        usable = [ch for ch in w if ch is not None and ch not in branch]
        for ch in usable:
            find(ch)
        for ch in usable[1:]:
            parent[find(ch)] = find(usable[0])
    label, unresolved = [], 0
    for w in windows:
        usable = [ch for ch in w if ch is not None and ch not in branch]
        if usable:
            label.append(("c", find(usable[0])))
        else:
            label.append(("w", w))
            unresolved += 1
    codes = {lab: i for i, lab in enumerate(dict.fromkeys(label))}
    n_links = sum(1 for w in distinct for ch in w if ch is not None and ch in branch)
    return np.array([codes[lab] for lab in label]), len(branch), unresolved, len(windows) - len(distinct), n_links


@pytest.mark.parametrize("seed", range(5))
def test_recovers_exactly_the_planted_articles_split_by_window(seed):
    store = make_store(n_articles=60, d=24, rho=0.8, length=(6, 30), zero_rows=0.02, rng=100 + seed)
    blind, truth = split_pair(store, seed, names=("train", "val", "ood"), ratios=(0.8, 0.1, 0.1))
    rec = recover_articles(blind)
    assert same_partition(np.concatenate(rec.labels), truth)
    assert rec.n_articles == store.n_articles and rec.n_ambiguous == 0 and rec.share_unambiguous == 1.0
    assert rec.n_windows_per_file == [s.n for s in blind]
    n_zero = sum(int((s.contexts == 0).all(-1).sum() + (s.targets == 0).all(-1).sum()) for s in blind)
    assert rec.n_null_chunks == n_zero > 0


def test_recovers_the_real_python_docs_articles():
    """Real encoder output (with 7 duplicated chunk vectors) split by window: exact articles."""
    tr = load_sequences(FIXTURES / "python_docs" / "train_store.npz")
    rng = np.random.default_rng(0)
    to_val = rng.random(tr.n) < 0.2
    blind = [replace(tr.subset(~to_val), article_ids=None), replace(tr.subset(to_val), article_ids=None)]
    rec = recover_articles(blind)
    truth = np.r_[tr.article_ids[~to_val], tr.article_ids[to_val]]
    assert same_partition(np.concatenate(rec.labels), truth)
    assert rec.n_ambiguous > 0  # duplicated boilerplate chunks exist in the real data and were not used


def _with_shared_chunks(seed=0):
    """Articles 1 and 2 share one boilerplate chunk; articles 3 and 4 share a run of three."""
    store = make_store(n_articles=8, d=16, length=20, rng=seed)
    v = store.vectors.copy()
    row = {(int(a), int(c)): i for i, (a, c) in enumerate(zip(store.article_ids, store.chunk_index))}
    v[row[(2, 7)]] = v[row[(1, 5)]]
    for j in range(3):
        v[row[(4, 10 + j)]] = v[row[(3, 4 + j)]]
    return SyntheticStore(v, store.article_ids, store.chunk_index)


def test_duplicated_boilerplate_chunks_do_not_merge_articles():
    store = _with_shared_chunks()
    blind, truth = split_pair(store, 1)
    rec = recover_articles(blind)
    assert same_partition(np.concatenate(rec.labels), truth)
    assert rec.n_articles == 8
    assert rec.n_ambiguous == 4  # 1 + 3 duplicated chunk vectors are branch points
    # a chunk at position p of a 20-chunk article sits in the windows starting at max(p-5, 0)..min(p, 14)
    positions = [5, 7, 4, 5, 6, 10, 11, 12]
    assert rec.n_ambiguous_links == sum(min(p, 14) - max(p - 5, 0) + 1 for p in positions)
    assert rec.share_unambiguous == 1.0  # every window still has unique chunks to place it


def test_merging_through_duplicates_would_have_failed():
    """The naive rule (join every chunk of a window) merges the articles: the test above can fail."""
    store = _with_shared_chunks()
    blind, truth = split_pair(store, 1)
    windows = [np.concatenate([s.contexts, s.targets[:, None]], axis=1) for s in blind]
    allw = np.concatenate(windows)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    _, ids = np.unique(allw.reshape(-1, allw.shape[-1]), axis=0, return_inverse=True)
    ids = ids.reshape(allw.shape[0], -1)
    m = int(ids.max()) + 1
    g = coo_matrix((np.ones(ids.size), (np.repeat(ids[:, 0], ids.shape[1]), ids.ravel())), shape=(m, m)).tocsr()
    n, comp = connected_components(g, directed=False)
    assert np.unique(comp[ids[:, 0]]).size == 6  # 8 articles collapse to 6


def test_long_shared_run_leaves_windows_unresolved_not_merged():
    """Two articles share 7 consecutive chunks (longer than a window): the windows inside are ambiguous."""
    store = make_store(n_articles=4, d=16, length=24, rng=5)
    v = store.vectors.copy()
    a0, a1 = np.flatnonzero(store.article_ids == 0), np.flatnonzero(store.article_ids == 1)
    v[a1[10:17]] = v[a0[8:15]]
    store = SyntheticStore(v, store.article_ids, store.chunk_index)
    blind, truth = split_pair(store, 2)
    rec = recover_articles(blind)
    labels = np.concatenate(rec.labels)
    # windows made only of shared chunks: 2 distinct windows inside the run, each in both articles
    allw = np.concatenate([np.concatenate([s.contexts.reshape(s.n, -1), s.targets], axis=1) for s in blind])
    _, inv, counts = np.unique(allw, axis=0, return_inverse=True, return_counts=True)
    inside = counts[inv.reshape(-1)] > 1
    assert inside.sum() == 4 and rec.n_unresolved_windows == 4 and rec.share_unambiguous == pytest.approx(1 - 4 / labels.size)
    # every other window's recovered article holds windows of one planted article only
    for lab in np.unique(labels[~inside]):
        assert np.unique(truth[labels == lab]).size == 1


@pytest.mark.parametrize("seed", range(3))
def test_matches_slow_reference(seed):
    store = _with_shared_chunks(seed)
    rng = np.random.default_rng(seed)
    v = store.vectors.copy()
    v[rng.choice(v.shape[0], 6, replace=False)] = 0.0  # zero chunks never link
    store = SyntheticStore(v, store.article_ids, store.chunk_index)
    blind = list(make_splits(store, k=5, by="window", n_duplicated=2, keep_ids=False, rng=seed).values())
    rec = recover_articles(blind)
    slow, n_branch, n_unres, n_dup, n_links = slow_recovery(blind)
    assert same_partition(np.concatenate(rec.labels), slow)
    assert (rec.n_ambiguous, rec.n_unresolved_windows, rec.n_duplicate_windows, rec.n_ambiguous_links) == (
        n_branch, n_unres, n_dup, n_links,
    )


def test_duplicated_articles_share_a_code_across_files():
    store = make_store(n_articles=30, d=16, length=(8, 14), rng=9)
    splits = make_splits(store, k=5, by="article", n_duplicated=4, rng=3)
    blind = [replace(s, article_ids=None) for s in splits.values()]
    rec = recover_articles(blind)
    assert rec.n_shared_articles == 4
    truth = np.concatenate([s.article_ids for s in splits.values()])
    assert same_partition(np.concatenate(rec.labels), truth)
    assert rec.n_duplicate_windows == int(np.isin(splits["val"].article_ids, splits["train"].article_ids).sum())


def test_zero_vectors_never_link_articles():
    store = make_store(n_articles=10, d=16, length=12, rng=4)
    v = store.vectors.copy()
    v[store.chunk_index == 6] = 0.0  # the same (zero) vector in every article
    store = SyntheticStore(v, store.article_ids, store.chunk_index)
    blind, truth = split_pair(store, 0)
    rec = recover_articles(blind)
    assert same_partition(np.concatenate(rec.labels), truth) and rec.n_articles == 10
    assert rec.n_null_chunks == sum(int((np.c_[s.contexts.reshape(-1, 16)] == 0).all(1).sum() + (s.targets == 0).all(1).sum()) for s in blind)


def test_not_stride_one_links_nothing():
    rng = np.random.default_rng(0)
    s = SequenceSet(rng.standard_normal((300, 5, 8)).astype(np.float32), rng.standard_normal((300, 8)).astype(np.float32))
    rec = recover_articles([s])
    assert rec.share_linked == 0.0 and rec.n_articles == 300


def test_progress_and_summary():
    store = make_store(n_articles=5, d=8, length=10, rng=1)
    blind, _ = split_pair(store, 0)
    calls = []
    rec = recover_articles(blind, progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (rec.n_windows, rec.n_windows)
    d = rec.to_dict()
    assert "labels" not in d and d["n_articles"] == 5
    assert "5 articles" in rec.to_markdown() and "recovered" in rec.note

"""Leakage analyzer against planted leakage: window-level splits, duplicated articles, near-duplicates, nulls."""

import json

import numpy as np
import pytest

from lvmdiag import synthetic as syn
from lvmdiag.analyzers.leakage import COS_EDGES, analyze_leakage
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import InputError
from _compare import assert_no_near_ties, assert_same_result


@pytest.fixture(scope="module")
def store():
    return syn.make_store(n_articles=80, d=32, length=(12, 40), rng=1)


def _seq(ctx, tgt, split, ids=None):
    return SequenceSet(contexts=np.asarray(ctx, np.float32), targets=np.asarray(tgt, np.float32),
                       article_ids=ids, id_source="given" if ids is not None else "none", split=split)


def test_window_split_pool_shares_chunks_in_almost_every_val_window(store):
    # Every stride-1 window overlaps >= 5 neighbours of its article (articles have >= 12 chunks);
    # each lands in train with probability 0.8, so a val window shares no chunk with probability
    # <= 0.2^5 = 3.2e-4: over ~350 val windows the expected count of such windows is ~0.1.
    splits = syn.make_splits(store, k=5, by="window", keep_ids=False, rng=2)
    res = analyze_leakage(splits)
    val = res.split("val")
    assert val.share_shared_chunk >= 0.99
    assert val.share_affected >= 0.99
    assert val.n_shared_windows == 0  # a window is in exactly one split
    assert res.group_method == "recovered" and val.n_shared_articles > 0.9 * val.n_articles
    assert res.found() and res.found("val")


def test_same_pool_split_by_article_reports_nothing(store):
    splits = syn.make_splits(store, k=5, by="article", keep_ids=False, rng=2)
    res = analyze_leakage(splits)
    val = res.split("val")
    counts = (val.n_shared_articles, val.n_shared_chunks, val.n_shared_windows, val.n_near_chunks, val.windows_affected)
    assert counts == (0, 0, 0, 0, 0)
    assert not res.found()
    assert val.max_near_cosine < 0.98
    assert "no leakage" in res.to_markdown()


@pytest.mark.parametrize("keep_ids", [False, True])
def test_planted_duplicated_articles_found_with_exactly_the_planted_windows(store, keep_ids):
    truth = syn.make_splits(store, k=5, by="article", n_duplicated=4, keep_ids=True, rng=3)
    splits = syn.make_splits(store, k=5, by="article", n_duplicated=4, keep_ids=keep_ids, rng=3)
    planted = np.isin(truth["val"].article_ids, truth["train"].article_ids)
    assert planted.sum() > 0
    res = analyze_leakage(splits, max_examples=1000)
    val = res.split("val")
    flagged_windows = np.zeros(val.n_windows, bool)
    flagged_windows[[e.row for e in val.shared_window_examples]] = True
    np.testing.assert_array_equal(flagged_windows, planted)
    assert val.n_shared_windows == planted.sum() == val.windows_shared_chunk == val.windows_affected
    assert val.n_shared_articles == 4
    assert val.n_near_chunks == 0
    # every example points at a train window with identical content
    for e in val.shared_window_examples:
        np.testing.assert_array_equal(splits["val"].contexts[e.row], splits["train"].contexts[e.train_row])
        np.testing.assert_array_equal(splits["val"].targets[e.row], splits["train"].targets[e.train_row])


def _perturb(x, rng, eps):
    """Unit vectors at cosine 1/sqrt(1+eps^2) from x (noise orthogonal to x)."""
    n = rng.standard_normal(x.shape)
    n -= np.sum(n * x, axis=-1, keepdims=True) * x
    n /= np.linalg.norm(n, axis=-1, keepdims=True)
    return (x + eps * n) / np.sqrt(1 + eps**2)


def test_near_duplicates_found_and_random_vectors_not(store):
    rng = np.random.default_rng(7)
    train = syn.store_windows(store, k=5, split="train", keep_ids=False)
    pick = rng.choice(train.n, size=6, replace=False)
    eps = 0.1  # cosine 1/sqrt(1.01) = 0.995 >= 0.99
    near_ctx = _perturb(train.contexts[pick].astype(np.float64), rng, eps)
    near_tgt = _perturb(train.targets[pick].astype(np.float64), rng, eps)
    rand = rng.standard_normal((40, 6, 32))
    rand /= np.linalg.norm(rand, axis=-1, keepdims=True)
    ctx = np.concatenate([rand[:20, :5], near_ctx, rand[20:, :5]])
    tgt = np.concatenate([rand[:20, 5], near_tgt, rand[20:, 5]])
    val = _seq(ctx, tgt, "val")
    res = analyze_leakage({"train": train, "val": val}, max_examples=5, groups=[np.zeros(train.n, int), np.ones(46, int)])
    v = res.split("val")
    planted_rows = set(range(20, 26))
    assert v.n_shared_chunks == 0 and v.n_shared_windows == 0
    assert v.windows_near_chunk == 6 and v.share_near_chunk == pytest.approx(6 / 46)
    assert v.n_near_chunks == 36  # every chunk of the 6 planted windows (no exact copies among them)
    assert {e.row for e in v.near_examples} <= planted_rows
    assert all(e.cosine >= 0.99 for e in v.near_examples)
    for e in v.near_examples:  # the match is the perturbed original
        src = pick[e.row - 20]
        orig = train.contexts[src][e.pos] if e.pos < 5 else train.targets[src]
        match = train.contexts[e.train_row][e.train_pos] if e.train_pos < 5 else train.targets[e.train_row]
        np.testing.assert_array_equal(orig, match)
    # random vectors alone: no near-duplicates (random unit vectors in 32-d have |cos| ~ 0.18)
    only_random = _seq(rand[:, :5], rand[:, 5], "val")
    r2 = analyze_leakage({"train": train, "val": only_random}, groups=[np.zeros(train.n, int), np.ones(40, int)])
    assert r2.split("val").n_near_chunks == 0 and not r2.found()


def test_analyzer_near_search_equals_plain_loop_on_small_data():
    """Blocked search in the analyzer (tiny blocks/tiles) equals an obvious double loop over distinct chunks."""
    rng = np.random.default_rng(11)
    base = rng.standard_normal((30, 8)).astype(np.float32)
    base[4] = 0.0
    t_idx = rng.integers(0, 30, size=(25, 6))
    v_idx = rng.integers(0, 30, size=(15, 6))
    train = _seq(base[t_idx[:, :5]], base[t_idx[:, 5]], "train")
    vvec = base[v_idx] + (rng.random((15, 6, 1)) < 0.5) * 0.05 * rng.standard_normal((15, 6, 8)).astype(np.float32)
    vvec[v_idx == 4] = 0.0
    val = _seq(vvec[:, :5], vvec[:, 5], "val")
    res = analyze_leakage({"train": train, "val": val}, threshold=0.9, block_rows=3, tile_elems=5,
                          groups=[np.arange(25), np.arange(25, 40)])
    v = res.split("val")

    def chunks(s):
        return [tuple(x) for x in np.concatenate([s.contexts, s.targets[:, None]], axis=1).reshape(-1, 8)]

    tr = {c for c in chunks(train) if any(c)}
    vc = [c for c in chunks(val)]
    best = {}
    for c in set(vc):
        if not any(c) or c in tr:
            continue
        a = np.array(c, np.float64)
        best[c] = max(float(a @ np.array(t) / np.linalg.norm(a) / np.linalg.norm(t)) for t in tr)
    # counts at the 0.9 threshold and the histogram bins compare float32 blocked cosines with this
    # float64 loop: exact state only because no cosine sits within rounding of an edge (checked)
    assert_no_near_ties(list(best.values()), [0.9, *COS_EDGES])
    win_exact = [any(c in tr for c in vc[6 * i: 6 * i + 6]) for i in range(15)]
    win_near = [any(best.get(c, -2) >= 0.9 for c in vc[6 * i: 6 * i + 6]) for i in range(15)]
    assert v.windows_shared_chunk == sum(win_exact)
    assert v.windows_near_chunk == sum(win_near)
    assert v.n_near_chunks == sum(b >= 0.9 for b in best.values())
    assert v.max_near_cosine == pytest.approx(max(best.values()), abs=1e-5)
    assert list(v.cos_hist) == list(np.histogram(list(best.values()), bins=COS_EDGES)[0])
    assert sum(win_exact) > 0 and sum(win_near) > 0  # the data exercise both kinds


def test_zero_vectors_are_never_shared():
    st = syn.make_store(n_articles=40, d=16, zero_rows=0.15, rng=4)
    splits = syn.make_splits(st, k=5, by="article", keep_ids=True, rng=5)
    res = analyze_leakage(splits)
    v = res.split("val")
    assert v.n_null_slots > 0
    assert v.n_shared_chunks == 0 and v.windows_affected == 0 and not res.found()


def test_exact_copy_is_shared_not_near_and_ood_is_compared_to_train(store):
    splits = syn.make_splits(store, k=5, ratios=(0.7, 0.15, 0.15), names=("train", "val", "ood"), rng=6)
    tr = splits["train"]
    ood = splits["ood"]
    ood = _seq(np.concatenate([ood.contexts, tr.contexts[:2]]), np.concatenate([ood.targets, tr.targets[:2]]),
               "ood", ids=np.r_[ood.article_ids, tr.article_ids[:2]])
    res = analyze_leakage({"train": tr, "val": splits["val"], "ood": ood})
    assert [s.split for s in res.splits] == ["val", "ood"]
    o = res.split("ood")
    assert o.n_shared_windows == 2 and o.n_near_chunks == 0 and o.n_shared_articles == 1
    assert res.split("val").windows_affected == 0
    json.dumps(res.to_dict(), allow_nan=False)
    md = res.to_markdown()
    assert "LEAKAGE" in md and "ood" in md


def test_bad_input_is_rejected(store):
    s = syn.make_splits(store, k=5, rng=0)
    with pytest.raises(InputError, match="train"):
        analyze_leakage({"val": s["val"], "ood": s["val"]})
    with pytest.raises(InputError, match="besides"):
        analyze_leakage({"train": s["train"]})
    other = syn.make_splits(syn.make_store(n_articles=10, d=8, rng=0), k=5, rng=0)
    with pytest.raises(InputError, match="D="):
        analyze_leakage({"train": s["train"], "val": other["val"]})
    with pytest.raises(InputError, match="threshold"):
        analyze_leakage(s, threshold=1.5)


def test_result_does_not_depend_on_block_size_and_progress_reaches_total(store):
    splits = syn.make_splits(store, k=5, by="article", n_duplicated=2, keep_ids=False, rng=8)
    calls = []
    a = analyze_leakage(splits, block_rows=5, tile_elems=97, progress=lambda d, t: calls.append((d, t)))
    b = analyze_leakage(splits, block_rows=100_000)
    assert_same_result(a.to_dict(), b.to_dict())
    done = [c[0] for c in calls]
    assert done == sorted(done) and calls[-1][0] == calls[-1][1]



# ---- article ids shared without content (ids numbered per file) ----------------------------------

def _renumbered(seq, offset=0):
    """``seq`` with its article ids renumbered 0..n-1 (+ offset), as a file numbered on its own would be."""
    ids = np.unique(seq.article_ids, return_inverse=True)[1].astype(np.int64) + offset
    return _seq(seq.contexts, seq.targets, seq.split, ids=ids)


def _slow_content_ids(val, train):
    """Independent loop: val ids under which some val chunk's bytes occur in a train window with the same id."""
    def chunks(s, i):
        return {c.tobytes() for c in np.concatenate([s.contexts[i], s.targets[i][None]]) if np.any(c)}

    train_by_id = {}
    for i, a in enumerate(train.article_ids):
        train_by_id.setdefault(a, set()).update(chunks(train, i))
    return {a for i, a in enumerate(val.article_ids) if chunks(val, i) & train_by_id.get(a, set())}


def test_ids_numbered_per_file_are_a_warning_not_leakage(store):
    sp = syn.make_splits(store, k=5, by="article", keep_ids=True, rng=2)
    train, val = _renumbered(sp["train"]), _renumbered(sp["val"])
    res = analyze_leakage({"train": train, "val": val})
    v = res.split("val")
    n_val_ids = np.unique(val.article_ids).size
    assert (v.n_shared_chunks, v.n_shared_windows, v.n_near_chunks) == (0, 0, 0)
    assert v.n_shared_articles == n_val_ids and v.windows_shared_article == v.n_windows  # every val id is in train
    assert v.n_content_articles == 0 and v.n_id_only_articles == n_val_ids and v.windows_id_only_article == v.n_windows
    assert v.windows_affected == 0 and v.share_affected == 0 and not v.leaks and v.shares_ids_only
    assert not res.found()
    verdict = res.verdict()
    assert "no content leakage" in verdict and "LEAKAGE" not in verdict
    assert f"{n_val_ids} article ids with train but no chunk content" in verdict and "numbered per file" in verdict
    md = res.to_markdown()
    assert "**Warning:**" in md and "not article-disjoint" in md
    json.dumps(res.to_dict(), allow_nan=False)
    # ids that do not collide: no warning at all
    clean = analyze_leakage({"train": train, "val": _renumbered(sp["val"], offset=10_000)})
    assert clean.split("val").n_shared_articles == 0 and not clean.split("val").shares_ids_only
    assert clean.verdict().startswith("no leakage")


def test_colliding_ids_with_one_truly_duplicated_article_count_only_that_article(store):
    truth = syn.make_splits(store, k=5, by="article", n_duplicated=1, keep_ids=True, rng=3)
    dup = np.intersect1d(truth["val"].article_ids, truth["train"].article_ids)
    assert dup.size == 1
    planted = truth["val"].article_ids == dup[0]
    train = _renumbered(truth["train"])
    # val ids: the duplicated article keeps its train number (same id, same content); the others are
    # numbered from 0, colliding with unrelated train articles
    dup_train_id = train.article_ids[truth["train"].article_ids == dup[0]][0]
    val_ids = _renumbered(truth["val"]).article_ids
    val_ids = np.where(planted, dup_train_id, np.where(val_ids == dup_train_id, val_ids.max() + 1, val_ids))
    val = _seq(truth["val"].contexts, truth["val"].targets, "val", ids=val_ids)
    res = analyze_leakage({"train": train, "val": val}, max_examples=1000)
    v = res.split("val")
    assert _slow_content_ids(val, train) == {dup_train_id}
    assert v.n_content_articles == 1 and v.n_id_only_articles == v.n_shared_articles - 1 > 0
    assert v.windows_affected == planted.sum() == v.n_shared_windows  # exactly the duplicated article's windows
    assert v.windows_id_only_article == int(np.isin(val_ids, np.intersect1d(val_ids, train.article_ids)).sum()) - planted.sum()
    assert res.found() and res.verdict().startswith("LEAKAGE") and "numbered per file" in res.verdict()


def test_content_ids_match_a_plain_loop_on_mixed_ids():
    """Shared chunks under the same id, under another id, and ids shared without content: analyzer = loop."""
    rng = np.random.default_rng(21)
    base = rng.standard_normal((60, 8)).astype(np.float32)
    t_idx = rng.integers(0, 40, size=(30, 6))
    v_idx = rng.integers(30, 60, size=(20, 6))  # chunks 30..39 may be shared
    train = _seq(base[t_idx[:, :5]], base[t_idx[:, 5]], "train", ids=rng.integers(0, 6, 30))
    val = _seq(base[v_idx[:, :5]], base[v_idx[:, 5]], "val", ids=rng.integers(3, 9, 20))
    res = analyze_leakage({"train": train, "val": val}, block_rows=4, tile_elems=7)
    v = res.split("val")
    want = _slow_content_ids(val, train)
    shared = set(np.intersect1d(val.article_ids, train.article_ids).tolist())
    assert 0 < len(want) < len(shared)  # the data exercise both kinds of shared id
    assert v.n_content_articles == len(want & shared) and v.n_id_only_articles == len(shared - want)
    content_windows = [bool(val.article_ids[i] in want) for i in range(20)]
    exact = np.isin(v_idx, t_idx).any(axis=1)
    assert v.windows_affected == int((np.asarray(content_windows) | exact).sum())


def test_near_duplicate_under_the_same_id_counts_as_the_same_article(store):
    rng = np.random.default_rng(9)
    train = syn.store_windows(store, k=5, split="train", keep_ids=True)
    art = train.article_ids[0]
    rows = np.flatnonzero(train.article_ids == art)
    eps = 0.05  # cosine 0.9988 >= 0.98, no exact copy
    near_ctx = _perturb(train.contexts[rows].astype(np.float64), rng, eps).astype(np.float32)
    near_tgt = _perturb(train.targets[rows].astype(np.float64), rng, eps).astype(np.float32)
    same = analyze_leakage({"train": train, "val": _seq(near_ctx, near_tgt, "val", ids=np.full(rows.size, art))})
    s = same.split("val")
    assert s.n_shared_chunks == 0 and s.windows_near_chunk == rows.size
    assert s.n_content_articles == 1 and s.n_id_only_articles == 0 and s.windows_affected == rows.size
    other = train.article_ids[train.article_ids != art][0]  # same content, another article's id
    diff = analyze_leakage({"train": train, "val": _seq(near_ctx, near_tgt, "val", ids=np.full(rows.size, other))})
    d = diff.split("val")
    assert d.n_content_articles == 0 and d.n_id_only_articles == 1
    assert d.windows_affected == rows.size and diff.found()  # the near-duplicates leak whatever the id


def test_library_on_files_numbered_per_file_local_and_engine(tmp_path):
    """lvmdiag.leakage on two store files whose ids both start at 0: the same warning on both paths."""
    import lvmdiag

    rng = np.random.default_rng(0)
    v = rng.standard_normal((200, 16)).astype("f4")
    ids = np.repeat(np.arange(20), 10)
    np.savez(tmp_path / "a.npz", vectors=v[:100], article_ids=ids[:100])
    np.savez(tmp_path / "b.npz", vectors=v[100:], article_ids=ids[100:] - 10)
    seen = []
    for engine in (None, "local"):
        res = lvmdiag.leakage(str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), engine=engine)
        val = res.split("val")
        assert (val.n_shared_articles, val.n_id_only_articles, val.windows_affected) == (10, 10, 0), engine
        assert not res.found() and "numbered per file" in res.verdict() and val.ids_look_same is False
        seen.append((val.id_only_chunks, val.id_only_same_nearest, val.id_only_expected, val.id_only_pvalue))
    assert seen[0] == seen[1] and seen[0][0] == 100  # one-shot and engine passes: the same test


def _cut_store(st, keep):
    """The store's chunks where ``keep`` holds, chunk positions renumbered from 0 within each article."""
    from lvmdiag.synthetic import SyntheticStore

    arts, chunks = st.article_ids[keep], st.chunk_index[keep]
    starts = {a: chunks[arts == a].min() for a in np.unique(arts)}
    return SyntheticStore(st.vectors[keep], arts, chunks - np.array([starts[a] for a in arts]))


def test_articles_cut_by_position_are_the_same_articles_per_file_numbering_is_not():
    st = syn.make_store(n_articles=40, d=32, rho=0.9, length=(20, 30), rng=12)
    half = st.chunk_index < 10  # first 10 chunks of every article to train, the rest to val: no chunk in both
    train = syn.store_windows(_cut_store(st, half), k=5, split="train")
    val = syn.store_windows(_cut_store(st, ~half), k=5, split="val")
    res = analyze_leakage({"train": train, "val": val}, max_examples=100)
    v = res.split("val")
    assert (v.n_shared_chunks, v.n_near_chunks) == (0, 0)
    assert v.n_id_only_articles == 40 and v.ids_look_same and v.id_only_pool == 40
    # global test: T far above chance, p at its floor 1/(B + 1)
    assert v.id_only_same_nearest > 4 * v.id_only_expected
    assert v.id_only_pvalue == pytest.approx(1 / (v.id_only_permutations + 1)) and v.id_only_pvalue <= 1e-3
    # per article: p_a >= 1/40, so only articles whose same-id train article takes strictly the most of
    # their chunks (p_a = 1/40) pass BH at 0.05 over 40; every article is cut here, so all flagged are right
    assert 30 <= v.n_same_articles <= 40 and set(v.same_article_ids) <= set(range(40))
    # the same articles cut between the splits: evidence for the warning (and the data report's shared-ids
    # finding), never content leakage, since the test's null (ids independent of content) can fail otherwise
    flagged_windows = int(np.isin(val.article_ids, v.same_article_ids).sum())
    assert v.windows_same_article == flagged_windows > 0.7 * v.n_windows
    assert v.windows_affected == 0 and not res.found()
    assert f"{v.n_same_articles} singled out at FDR 0.05" in res.verdict() and "may not be article-disjoint" in res.verdict()
    assert "assumes ids numbered independently of content" in res.verdict()
    assert "suggests some of these ids name the same articles" in v.id_warning("train")
    assert "that rate holds only if ids are numbered independently of content" in v.id_warning("train")
    assert "If these ids do name the same articles, the split is not article-disjoint" in v.id_warning("train")
    # the same two files, each numbered from 0 in another order (no article keeps its id): no link seen
    shuffled = _seq(val.contexts, val.targets, "val", ids=(val.article_ids + 7) % 40)
    r2 = analyze_leakage({"train": train, "val": shuffled})
    s2 = r2.split("val")
    assert s2.n_id_only_articles == 40 and s2.ids_look_same is False and s2.n_same_articles == 0
    assert s2.id_only_pvalue > 1e-3 and "numbered per file" in r2.verdict()
    assert "not shown to name the same articles" in s2.id_warning("train")
    assert s2.windows_affected == 0 and not r2.found()


def test_mixed_cut_and_new_articles_with_colliding_ids_count_only_the_cut_ones():
    """20 val articles are the second halves of train articles (same ids); 20 are new articles whose ids,
    numbered on their own, collide with other train articles: only the cut ones' windows are leakage."""
    st = syn.make_store(n_articles=80, d=32, rho=0.9, length=(20, 30), rng=31)
    cut, new = np.arange(20), np.arange(60, 80)  # train holds articles 0..59 (0..19 only their first halves)
    first = st.chunk_index < 10
    in_train = (st.article_ids < 60) & (first | (st.article_ids >= 20))
    in_val = np.isin(st.article_ids, cut) & ~first | np.isin(st.article_ids, new)
    train = syn.store_windows(_cut_store(st, in_train), k=5, split="train")
    val = syn.store_windows(_cut_store(st, in_val), k=5, split="val")
    val_ids = np.where(val.article_ids >= 60, val.article_ids - 40, val.article_ids)  # new 60..79 -> ids 20..39
    val = _seq(val.contexts, val.targets, "val", ids=val_ids)
    res = analyze_leakage({"train": train, "val": val}, max_examples=1000)
    v = res.split("val")
    assert (v.n_shared_chunks, v.n_near_chunks, v.n_content_articles) == (0, 0, 0)
    assert v.n_id_only_articles == 40 and v.id_only_pool == 60 and v.ids_look_same
    # no new article flagged; with 60 train articles an article's p is >= 1/60, so only cut articles whose
    # same-id train article takes strictly the most of their chunks pass BH at 0.05 over 40 (14 of 20 here)
    assert set(v.same_article_ids) <= set(cut.tolist()) and v.n_same_articles >= 10
    cut_windows = np.isin(val_ids, cut)
    assert v.windows_same_article == int(np.isin(val_ids, v.same_article_ids).sum()) <= cut_windows.sum()
    assert v.windows_same_article >= 0.5 * cut_windows.sum()
    assert v.windows_affected == 0 and not res.found() and f"{v.n_same_articles} singled out" in res.verdict()


def _topic_store(n, rng, d=32, noise=0.3):
    """Articles = own topic vector + noise per chunk (chunks of an article resemble each other), ids 0..n-1."""
    from lvmdiag.synthetic import SyntheticStore

    vecs, arts, idx = [], [], []
    for a in range(n):
        length = rng.integers(20, 30)
        x = rng.standard_normal(d)[None, :] + noise * rng.standard_normal((length, d))
        vecs.append((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
        arts += [a] * length
        idx += list(range(length))
    return SyntheticStore(np.concatenate(vecs), np.array(arts), np.array(idx))


def test_topic_null_different_articles_per_file_ids_keep_the_level():
    """The review's null (review4/leak_topic.py): train and val hold different topic-structured articles,
    each file numbering ids from 0. The former chunk-level binomial test reported LEAKAGE on 4 of seeds
    0..29 (14, 20, 27, 28) at its nominal 1e-3; the article-level test is exact under this null."""
    from scipy.stats import binom

    reps, found, small, pvals = 25, 0, 0, []
    for r in range(reps):
        rng = np.random.default_rng(r)
        t = syn.store_windows(_topic_store(40, rng), k=5, split="train")
        v = syn.store_windows(_topic_store(20, rng), k=5, split="val")
        res = analyze_leakage({"train": t, "val": v})
        s = res.split("val")
        assert (s.n_shared_chunks, s.n_near_chunks, s.n_id_only_articles) == (0, 0, 20)
        if r in (14, 20):  # the former false alarms: now no leakage, no article flagged
            assert not res.found() and s.n_same_articles == 0 and s.ids_look_same is False
        found += res.found()
        small += s.id_only_pvalue <= 0.05
        pvals.append(s.id_only_pvalue)
    # P(>= 2 of 25 at level 1e-3) = 3e-4; P(more than the bound at 0.05) <= 1e-3
    assert found <= 1
    assert small <= binom.isf(1e-3, reps, 0.05)
    assert 0.25 < np.mean(pvals) < 0.75  # super-uniform p-values: mean 1/2 under the null (sd 0.058 for 25)


def _slow_same_article(val, train):
    """Plain loops: H over distinct val chunks (first occurrence, row-major) of id-only windows, nearest train
    chunk by float64 cosine (first occurrence), then T, chance, per-article p, BH at 0.05."""
    from lvmdiag.analyzers.leakage import SAME_ARTICLE_FDR

    def distinct(s):
        seen = {}
        for i in range(s.n):
            for c in list(s.contexts[i]) + [s.targets[i]]:
                seen.setdefault(c.tobytes(), (c.astype(np.float64), s.article_ids[i]))
        return seen

    tr, va = distinct(train), distinct(val)
    content = _slow_content_ids(val, train)
    shared = set(val.article_ids.tolist()) & set(train.article_ids.tolist())
    id_only = shared - content
    pool = sorted(set(train.article_ids.tolist()) - content)
    tvec = [v for v, _ in tr.values()]
    tlab = [a for _, a in tr.values()]
    H, n_chunks = {}, 0
    for key, (x, a) in va.items():
        if a not in id_only or key in tr:
            continue
        n_chunks += 1
        cos = [float(x @ t / np.linalg.norm(x) / np.linalg.norm(t)) for t in tvec]
        b = tlab[int(np.argmax(cos))]
        H[a, b] = H.get((a, b), 0) + 1
    T = sum(H.get((a, a), 0) for a in id_only)
    chance = sum(h for (a, b), h in H.items() if b in pool) / len(pool)
    p = {a: (sum(H.get((a, b), 0) >= H.get((a, a), 0) for b in pool) / len(pool) if H.get((a, a), 0) else 1.0)
         for a in sorted(id_only)}
    ranked = sorted(p.values())
    m = len(ranked)
    passing = [k for k in range(1, m + 1) if ranked[k - 1] <= k / m * SAME_ARTICLE_FDR]
    cutoff = ranked[max(passing) - 1] if passing else -1.0
    flagged = {a for a, pa in p.items() if pa <= cutoff and H.get((a, a), 0) > 0}
    return n_chunks, T, chance, len(pool), flagged


def test_same_article_counts_match_a_plain_loop():
    st = syn.make_store(n_articles=12, d=16, rho=0.85, length=(14, 18), rng=13)
    half = st.chunk_index < 7
    train = syn.store_windows(_cut_store(st, half), k=3, split="train")
    val = syn.store_windows(_cut_store(st, ~half), k=3, split="val")
    ids = np.where(val.article_ids < 6, val.article_ids, val.article_ids + 100)  # 6 cut articles keep their ids
    ids = np.where(ids == 106, 3, ids)  # ... and a 7th val article reuses id 3: two val articles under one id
    val = _seq(val.contexts, val.targets, "val", ids=ids)
    v = analyze_leakage({"train": train, "val": val}, block_rows=7, tile_elems=11, max_examples=100).split("val")
    n_chunks, T, chance, n_pool, flagged = _slow_same_article(val, train)
    assert (v.id_only_chunks, v.id_only_same_nearest, v.id_only_pool) == (n_chunks, T, n_pool)
    assert v.id_only_expected == pytest.approx(chance, rel=1e-12)
    assert v.n_id_only_articles == 6 and n_chunks > 0 and T > 0
    if v.ids_look_same:
        assert set(v.same_article_ids) == flagged and v.n_same_articles == len(flagged)
    else:
        assert v.n_same_articles == 0


def test_same_article_pvalue_matches_a_loop_over_the_same_injections():
    """The global p-value equals a loop drawing the same injections: articles with a tested chunk in sorted
    id order, pool articles in sorted id order, one ``rng.choice(n_pool, r, replace=False)`` per draw."""
    from lvmdiag.analyzers.leakage import _ArticleCodes, _same_article_test
    from lvmdiag.stats.resampling import named_stream

    rng = np.random.default_rng(5)
    lab = np.repeat(np.arange(6), 8)  # 6 val articles, 8 one-chunk windows each (k1 = 1)
    tlab = np.repeat(np.arange(10), 3)  # 10 train articles, 3 windows each
    bias = rng.random(lab.size) < 0.3  # a mild pull towards the same-id article: a mid-range p
    tb = np.where(bias, lab, rng.integers(0, 10, lab.size))
    q_id = np.array([3 * b + rng.integers(0, 3) for b in tb])
    args = (_ArticleCodes.of(lab, tlab), np.ones(lab.size, bool), np.array([], int), np.arange(lab.size), q_id, 1, 1)
    res = _same_article_test(*args, named_stream(0, "leakage-same-id", "x"), n_perm=499)
    H = np.zeros((6, 10), int)
    np.add.at(H, (lab, tb), 1)
    T = int(np.trace(H[:, :6]))
    hit = [a for a in range(6) if H[a].any()]
    g = named_stream(0, "leakage-same-id", "x")
    null = [sum(H[a, s] for a, s in zip(hit, g.choice(10, size=len(hit), replace=False))) for _ in range(499)]
    p = (1 + sum(t >= T for t in null)) / 500
    assert (res.same, res.n_chunks, res.n_pool, res.n_perm) == (T, 48, 10, 499)
    assert res.chance == pytest.approx(H.sum() / 10)
    assert res.pvalue == p and 0.001 < p < 0.9


def test_real_python_docs_ids_per_file_versus_articles_cut_by_position(tmp_path):
    """Real embeddings (fixtures/python_docs): renumbered files share every id and nothing else; articles
    cut by position (first 60% of each article's chunks in train) are recognised as the same articles."""
    from pathlib import Path

    import lvmdiag

    fx = Path(__file__).resolve().parents[2] / "fixtures" / "python_docs"
    tr, va = np.load(fx / "train_store.npz"), np.load(fx / "val_store.npz")

    def save(name, vec, ids, pos):
        np.savez(tmp_path / name, vectors=vec, article_ids=np.unique(ids, return_inverse=True)[1], chunk_index=pos)
        return str(tmp_path / name)

    a = save("a.npz", tr["vectors"], tr["article_ids"], tr["chunk_index"])
    b = save("b.npz", va["vectors"], va["article_ids"], va["chunk_index"])
    per_file = lvmdiag.leakage(a, b).split("val")
    assert per_file.n_shared_chunks == 0 and per_file.n_id_only_articles == per_file.n_articles > 0
    assert per_file.ids_look_same is False and per_file.windows_affected == 0 and per_file.n_same_articles == 0

    ids, pos, vec = tr["article_ids"], tr["chunk_index"], tr["vectors"]
    cut = np.floor(0.6 * np.bincount(np.unique(ids, return_inverse=True)[1])[np.unique(ids, return_inverse=True)[1]])
    first = pos < cut
    c = save("c.npz", vec[first], ids[first], pos[first])
    d = save("d.npz", vec[~first], ids[~first], (pos - cut)[~first].astype(np.int64))
    by_pos = lvmdiag.leakage(c, d).split("val")
    assert by_pos.n_id_only_articles > 0.9 * by_pos.n_articles and by_pos.ids_look_same
    assert by_pos.id_only_same_nearest > 10 * by_pos.id_only_expected
    assert by_pos.id_only_pvalue == pytest.approx(1 / (by_pos.id_only_permutations + 1))
    # cut articles are singled out (evidence for the warning, not counted as content leakage)
    assert by_pos.n_same_articles > 0.5 * by_pos.n_id_only_articles
    assert by_pos.windows_same_article > 0.5 * by_pos.windows_id_only_article
    assert by_pos.windows_affected <= by_pos.n_windows - by_pos.windows_id_only_article  # id-only windows never count


def test_same_article_flags_match_a_plain_per_article_loop_with_bh():
    """The flagged set against a loop: per-article p = share of pool articles taking at least as many of the
    article's chunks as its same-id one (1 when it takes none), Benjamini-Hochberg by hand, gated by the global
    test (a pool of 60 so that flags can occur; the small case above compares empty sets)."""
    from lvmdiag.analyzers.leakage import SAME_ARTICLE_FDR, _ArticleCodes, _same_article_test
    from lvmdiag.stats.resampling import named_stream

    rng = np.random.default_rng(8)
    lab = np.repeat(np.arange(40), 12)  # 40 val articles, 12 one-chunk windows each
    tlab = np.repeat(np.arange(60), 2)  # 60 train articles
    pull = np.where(lab < 15, 0.6, 0.0)  # articles 0..14 are cut: most chunks find their same-id article
    tb = np.where(rng.random(lab.size) < pull, lab, rng.integers(0, 60, lab.size))
    q_id = 2 * tb + rng.integers(0, 2, lab.size)
    res = _same_article_test(_ArticleCodes.of(lab, tlab), np.ones(lab.size, bool), np.array([], int),
                             np.arange(lab.size), q_id, 1, 1,
                             named_stream(0, "leakage-same-id", "x"))
    H = np.zeros((40, 60), int)
    np.add.at(H, (lab, tb), 1)
    p = np.array([1.0 if H[a, a] == 0 else (H[a] >= H[a, a]).sum() / 60 for a in range(40)])
    order = np.argsort(p)
    adj = np.empty(40)
    running = 1.0
    for rank in range(40, 0, -1):  # step-up BH: adj_(i) = min over j >= i of p_(j) m / j
        running = min(running, p[order[rank - 1]] * 40 / rank)
        adj[order[rank - 1]] = running
    expected = {a for a in range(40) if adj[a] <= SAME_ARTICLE_FDR and H[a, a] > 0}
    assert res.pvalue <= 1e-3 and 10 <= len(expected) <= 15
    assert set(res.flagged.tolist()) == expected and expected <= set(range(15))

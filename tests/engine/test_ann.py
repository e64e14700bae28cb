"""The approximate near-duplicate path: recall against the exact search on planted near-duplicates."""

import numpy as np
import pytest

from lvmdiag.data.groups import resolve_groups
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.engine.leakage import LeakageAnalyzer
from lvmdiag.engine.runner import finalize_all, run_local
from lvmdiag.engine.data import parts_of
from lvmdiag.stats.near_duplicates import normalize_rows
from tests.engine.shards import assert_same_report

pytest.importorskip("faiss")


def planted(rng, n_train=3000, n_val=600, d=48, k=3, n_near=150):
    """Random unit windows; ``n_near`` val chunks are train chunks plus noise at cos ~0.99 (near, never exact)."""
    train = normalize_rows(rng.standard_normal((n_train * (k + 1), d)))[0].reshape(n_train, k + 1, d)
    val = normalize_rows(rng.standard_normal((n_val * (k + 1), d)))[0].reshape(n_val, k + 1, d)
    rows, slots = rng.choice(n_val, n_near, replace=False), rng.integers(0, k + 1, n_near)
    src = train[rng.integers(0, n_train, n_near), rng.integers(0, k + 1, n_near)]
    val[rows, slots] = normalize_rows(src + 0.02 * rng.standard_normal(src.shape) / np.sqrt(d) * 7)[0]
    mk = lambda x, name, ids: SequenceSet(x[:, :k].copy(), x[:, k].copy(), article_ids=ids, split=name)  # noqa: E731
    return {"train": mk(train, "train", np.arange(n_train) // 20),
            "val": mk(val, "val", 10_000 + np.arange(n_val) // 20)}


def run(splits, search):
    groups = resolve_groups(list(splits.values()))
    an = LeakageAnalyzer(list(splits), "train", 48, groups, n_reference=splits["train"].n, search=search)
    prepared, states, _ = run_local(parts_of(splits, groups, "train"), [an], block_rows=500)
    return finalize_all(prepared, states, splits)[0]["leakage"]


def test_ann_finds_the_planted_near_duplicates_that_the_exact_search_finds():
    splits = planted(np.random.default_rng(0))
    exact, ann = run(splits, "exact"), run(splits, "ann")
    e, a = exact.splits[0], ann.splits[0]
    assert e.n_near_chunks >= 140  # the planted pairs (cos ~0.99) are there
    assert a.n_near_chunks >= 0.99 * e.n_near_chunks  # recall >= 0.99 at the 0.98 threshold
    assert ann.search == "ann" and "recall measured against the exact search" in ann.search_note
    assert exact.search == "exact" and exact.search_note == ""
    # every other count is the exact path's (keys and hashes do not depend on the search)
    skip = {"n_near_chunks", "windows_near_chunk", "share_near_chunk", "windows_affected", "share_affected",
            "max_near_cosine", "cos_hist", "near_examples"}
    ed, ad = e.to_dict(), a.to_dict()
    assert_same_report({k: v for k, v in ed.items() if k not in skip}, {k: v for k, v in ad.items() if k not in skip})


def test_ivf_parts_pickle_and_merge_into_the_one_part_state():
    import pickle

    from lvmdiag.stats.ann import IVFNearest

    rng = np.random.default_rng(1)
    q = normalize_rows(rng.standard_normal((400, 16)))[0]
    refs = normalize_rows(rng.standard_normal((3000, 16)))[0]
    template = pickle.loads(pickle.dumps(IVFNearest(q, nprobe=4, buffer_rows=500)))  # the plan ships to workers
    one = template.fresh()
    one.update(refs, np.arange(3000))
    a, b = template.fresh(), template.fresh()
    a.update(refs[:1700], np.arange(1700))
    b.update(refs[1700:], np.arange(1700, 3000))
    merged = pickle.loads(pickle.dumps(a.light())).merge(pickle.loads(pickle.dumps(b.light())))  # as Dask ships them
    np.testing.assert_allclose(merged.result()[0], one.result()[0], atol=1e-6)
    assert (merged.result()[1] == one.result()[1]).all()
    rec = merged.recall(0.5)
    assert rec.n_sampled == 400 and rec.top1 > 0.5  # the exact sample is merged too


def test_the_scoring_rounds_do_not_change_the_result():
    """References go through one preallocated buffer scored whenever it is full: blocks straddling a round, a
    round smaller than a block and one round for everything give the same bests (cosines to float32 rounding:
    the products have other shapes; ids exactly, as no two references are within rounding of a tie), and the
    buffer is freed once the result is read."""
    from lvmdiag.stats.ann import IVFNearest

    rng = np.random.default_rng(2)
    q = normalize_rows(rng.standard_normal((300, 16)))[0]
    refs = normalize_rows(rng.standard_normal((2500, 16)))[0]
    template = IVFNearest(q, nprobe=3, buffer_rows=10**6)
    results = []
    for buffer_rows, block in ((10**6, 2500), (333, 100), (64, 257), (1, 700)):
        st = template.fresh()
        st.buffer_rows = buffer_rows
        for s in range(0, 2500, block):
            st.update(refs[s : s + block], np.arange(s, min(s + block, 2500)))
        results.append(st.result())
        assert st._buf is None
    for cos, ids in results[1:]:
        np.testing.assert_allclose(cos, results[0][0], atol=1e-6)
        assert (ids == results[0][1]).all()

"""Every guarantee check fails on a planted violation and passes on a correct split."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lvmdiag.resplit.verify import row_hashes, verify_outputs
from lvmdiag.synthetic import make_splits, make_store


@pytest.fixture()
def split3():
    store = make_store(n_articles=30, d=16, length=(8, 20), rng=0)
    splits = make_splits(store, k=4, ratios=(0.8, 0.1, 0.1), names=("train", "val", "ood"), rng=1)
    expected = {n: row_hashes(s).window for n, s in splits.items()}
    groups = {n: np.unique(s.article_ids) for n, s in splits.items()}
    n = sum(s.n for s in splits.values())
    achieved = np.array([s.n for s in splits.values()]) / n
    return splits, expected, groups, achieved


def _by_name(v):
    return {c.name: c.passed for c in v.checks}


def test_correct_split_passes(split3):
    splits, expected, groups, achieved = split3
    v = verify_outputs(splits, expected, achieved, 1e-9, groups, block_rows=5)
    assert v.passed, v.to_markdown()
    assert v.n_windows == tuple(s.n for s in splits.values())


def test_missing_row_fails(split3):
    splits, expected, groups, achieved = split3
    bad = dict(splits, val=splits["val"].subset(np.arange(1, splits["val"].n)))
    v = verify_outputs(bad, expected, achieved, 1.0, groups)
    assert not _by_name(v)["every input window in exactly one output"]
    assert not v.passed


def test_row_in_wrong_split_fails_even_when_totals_match(split3):
    splits, expected, groups, achieved = split3
    tr, va = splits["train"], splits["val"]
    moved_tr = tr.subset(np.arange(1, tr.n))
    moved_va = replace(
        va,
        contexts=np.concatenate([va.contexts, tr.contexts[:1]]),
        targets=np.concatenate([va.targets, tr.targets[:1]]),
    )
    v = verify_outputs(dict(splits, train=moved_tr, val=moved_va), expected, achieved, 1.0, groups)
    checks = _by_name(v)
    assert not checks["every input window in exactly one output"]
    assert not checks["no chunk vector shared across splits"]  # the moved window shares vectors with train


def test_shared_chunk_vector_fails(split3):
    splits, expected, groups, achieved = split3
    va = splits["val"]
    ctx = np.array(va.contexts)
    ctx[0, 0] = splits["train"].targets[5]  # one vector copied across splits
    v = verify_outputs(dict(splits, val=replace(va, contexts=ctx)), expected, achieved, 1.0, groups)
    assert not _by_name(v)["no chunk vector shared across splits"]


def test_zero_vectors_are_not_counted_as_shared(split3):
    splits, expected, groups, achieved = split3
    zeroed = {}
    for name, s in splits.items():
        ctx = np.array(s.contexts)
        ctx[0, 0] = 0.0  # failed-encoder rows are identical everywhere but are not leakage
        zeroed[name] = replace(s, contexts=ctx)
    exp = {n: row_hashes(s).window for n, s in zeroed.items()}
    v = verify_outputs(zeroed, exp, achieved, 1e-9, groups)
    assert _by_name(v)["no chunk vector shared across splits"]


def test_ratio_outside_tolerance_fails(split3):
    splits, expected, groups, achieved = split3
    v = verify_outputs(splits, expected, (0.5, 0.25, 0.25), 0.01, groups)
    assert not _by_name(v)["window shares within tolerance"]


def test_article_in_two_splits_fails(split3):
    splits, expected, groups, achieved = split3
    overlapping = dict(groups, val=np.r_[groups["val"], groups["train"][:1]])
    v = verify_outputs(splits, expected, achieved, 1.0, overlapping)
    assert not _by_name(v)["no article in two splits"]


def test_article_ids_read_back_in_two_splits_fail(split3):
    splits, expected, groups, achieved = split3
    va = splits["val"]
    ids = np.array(va.article_ids)
    ids[0] = splits["train"].article_ids[0]  # the file says one val window belongs to a train article
    v = verify_outputs(dict(splits, val=replace(va, article_ids=ids)), expected, achieved, 1.0, groups)
    assert not _by_name(v)["no article in two splits"]

"""resolve_groups: given ids first, then recovered articles, then contiguous blocks, always named."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from lvmdiag.data.groups import default_block_size, resolve_groups
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import InputError
from lvmdiag.synthetic import make_splits, make_store


def test_given_ids_become_dense_codes_shared_across_files():
    store = make_store(n_articles=25, d=8, length=(8, 12), rng=0, first_article_id=1000)
    sp = make_splits(store, k=5, by="article", n_duplicated=3, rng=1)
    ga = resolve_groups(list(sp.values()))
    assert ga.method == "given" and ga.recovery is None
    allraw = np.concatenate([s.article_ids for s in sp.values()])
    assert ga.n_groups == np.unique(allraw).size
    codes = np.concatenate(ga.labels)
    assert codes.min() == 0 and codes.max() == ga.n_groups - 1
    # same raw id <-> same code, in every file
    pairs = np.unique(np.c_[allraw, codes], axis=0)
    assert pairs.shape[0] == ga.n_groups
    assert ga.n_shared_groups == 3 and "3 of them in more than one file" in ga.note


def test_recovered_when_ids_missing():
    store = make_store(n_articles=30, d=8, length=(8, 16), rng=2)
    blind = list(make_splits(store, k=5, by="window", keep_ids=False, rng=3).values())
    ga = resolve_groups(blind)
    assert ga.method == "recovered" and ga.n_groups == 30 and ga.recovery is not None
    assert "30 articles recovered" in ga.note and ga.n_shared_groups == ga.recovery.n_shared_articles
    assert ga.to_dict()["recovery"]["n_articles"] == 30


def test_falls_back_to_blocks_when_recovery_finds_nothing():
    rng = np.random.default_rng(0)
    sets = [
        SequenceSet(rng.standard_normal((n, 5, 8)).astype(np.float32), rng.standard_normal((n, 8)).astype(np.float32),
                    split=name)
        for n, name in ((1000, "train"), (130, "val"))
    ]
    ga = resolve_groups(sets)
    assert ga.method == "contiguous-blocks" and ga.block_size == default_block_size(1000, 5) == 6
    assert "recovery linked only 0.0% of windows" in ga.note and "contiguous blocks" in ga.note
    # blocks are contiguous, never shared between files, dense over both
    np.testing.assert_array_equal(ga.labels[0], np.arange(1000) // 6)
    assert ga.labels[1].min() == ga.labels[0].max() + 1 and ga.n_shared_groups == 0
    assert ga.n_groups == int(np.ceil(1000 / 6)) + int(np.ceil(130 / 6))
    big = resolve_groups(sets, block_size=100, recover=False)
    assert big.recovery is None and big.n_groups == 10 + 2 and big.block_size == 100
    assert default_block_size(100_000, 5) == 500


def test_partial_ids_use_recovery_for_all_files():
    store = make_store(n_articles=12, d=8, length=(8, 12), rng=4)
    sp = make_splits(store, k=5, by="window", rng=5)
    sets = [sp["train"], replace(sp["val"], article_ids=None, id_source="none")]
    ga = resolve_groups(sets)
    assert ga.method == "recovered" and ga.n_groups == 12


def test_bad_arguments():
    with pytest.raises(InputError):
        resolve_groups([])
    s = SequenceSet(np.ones((10, 5, 4), np.float32), np.ones((10, 4), np.float32))
    with pytest.raises(InputError, match="block_size must be >= 1"):
        resolve_groups([s], block_size=0)

"""GroupKFold: invariants (no article straddles folds, complete partition, balanced sizes)."""

import numpy as np
import pytest

from lvmdiag.errors import InputError
from lvmdiag.stats.group_kfold import GroupKFold, assign_group_folds


@pytest.mark.parametrize("seed", range(5))
def test_folds_partition_rows_and_never_split_a_group(seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 50, size=40)
    groups = np.repeat(rng.permutation(1000)[:40], sizes)
    rng.shuffle(groups)
    cv = GroupKFold(5, rng=seed)
    seen = np.zeros(groups.size, int)
    for train, test in cv.split(groups=groups):
        assert np.intersect1d(np.unique(groups[train]), np.unique(groups[test])).size == 0
        assert np.union1d(train, test).size == groups.size
        seen[test] += 1
    assert np.all(seen == 1)  # every row is tested exactly once


@pytest.mark.parametrize("seed", range(5))
def test_fold_sizes_differ_by_at_most_the_largest_group(seed):
    # greedy largest-first into the smallest fold: max load - min load <= largest group
    sizes = np.random.default_rng(seed).lognormal(2, 1, size=60).astype(int) + 1
    folds = assign_group_folds(sizes, 5, rng=seed)
    loads = np.bincount(folds, weights=sizes, minlength=5)
    assert loads.max() - loads.min() <= sizes.max()


def test_too_few_groups_is_an_input_error():
    with pytest.raises(InputError, match="at least 5 articles"):
        assign_group_folds(np.array([3, 4, 0, 2]), 5)
    with pytest.raises(InputError):
        assign_group_folds(np.array([3, 4]), 1)


def test_folds_in_turn_keep_earlier_splits_folds_and_balance_each_comparison():
    from lvmdiag.stats.group_kfold import assign_folds_in_turn
    from lvmdiag.stats.resampling import named_stream

    rng = np.random.default_rng(0)
    sizes = rng.integers(5, 40, size=60)
    codes = np.repeat(np.arange(60), sizes)
    train, val, ood = codes[codes < 30], codes[(codes >= 30) & (codes < 45)], codes[codes >= 45]
    val = np.r_[val, codes[codes == 3]]  # article 3 is in train and val: one fold for both
    streams = lambda *names: [named_stream(7, "folds", n) for n in names]  # noqa: E731
    two = assign_folds_in_turn([train, val], 60, 5, streams("train", "val"))
    three = assign_folds_in_turn([train, val, ood], 60, 5, streams("train", "val", "ood"))
    seen = np.unique(np.r_[train, val])
    assert (three[seen] == two[seen]).all() and (two[45:] == -1).all() and (three[45:] >= 0).all()
    for other in (val, ood):  # each comparison's folds: rows of train plus that split, balanced greedily
        rows = np.bincount(three[np.r_[train, other]], minlength=5)
        assert rows.max() - rows.min() <= sizes.max()
    with pytest.raises(Exception, match="n_splits must be >= 2"):
        assign_folds_in_turn([train], 60, 1, streams("train"))

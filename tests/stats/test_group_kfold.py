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

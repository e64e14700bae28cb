"""The scikit-learn-shaped splitter: invariants (no straddling group, complete partition, ratio bound)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lvmdiag.errors import InputError
from lvmdiag.resplit.splitter import StratifiedGroupRatioSplit


def test_init_only_stores_parameters():
    sp = StratifiedGroupRatioSplit(ratios=(0.7, 0.3), n_bins=3, min_articles=5, random_state=4)
    params = inspect.signature(StratifiedGroupRatioSplit.__init__).parameters
    assert {k: getattr(sp, k) for k in params if k != "self"} == {
        "ratios": (0.7, 0.3), "n_bins": 3, "min_articles": 5, "random_state": 4,
    }
    # invalid values are only reported when splitting (scikit-learn convention)
    StratifiedGroupRatioSplit(ratios=(2.0,))
    assert sp.get_n_splits() == 1


@settings(max_examples=60, deadline=None)
@given(
    group_sizes=st.lists(st.integers(1, 60), min_size=3, max_size=60),
    seed=st.integers(0, 10_000),
    stratify=st.booleans(),
)
def test_groups_never_straddle_and_partition_is_complete(group_sizes, seed, stratify):
    groups = np.repeat(np.arange(len(group_sizes)) * 7 + 3, group_sizes)  # arbitrary labels
    rng = np.random.default_rng(seed)
    groups = groups[rng.permutation(groups.size)]  # rows of one group need not be contiguous
    n = groups.size
    y = rng.normal(size=n) if stratify else None
    sp = StratifiedGroupRatioSplit((0.8, 0.1, 0.1), min_articles=5, random_state=seed)
    (parts,) = list(sp.split(np.zeros((n, 2)), y, groups))
    assert len(parts) == 3
    allidx = np.concatenate(parts)
    np.testing.assert_array_equal(np.sort(allidx), np.arange(n))  # each row exactly once
    for i in range(3):
        for j in range(i + 1, 3):
            assert not np.intersect1d(groups[parts[i]], groups[parts[j]]).size
    shares = np.array([p.size for p in parts]) / n
    assert np.all(np.abs(shares - (0.8, 0.1, 0.1)) <= max(group_sizes) / n + 1e-12)
    # determinism
    (again,) = list(sp.split(np.zeros((n, 2)), y, groups))
    for a, b in zip(parts, again):
        np.testing.assert_array_equal(a, b)


def test_stratifying_on_y_balances_a_planted_skew():
    # 30 long groups with y = 1, 300 short groups with y = 0; the y = 1 rows must be shared 80/10/10.
    rng = np.random.default_rng(0)
    sizes = np.r_[rng.integers(100, 200, 30), rng.integers(2, 20, 300)]
    groups = np.repeat(np.arange(sizes.size), sizes)
    y = np.repeat(np.r_[np.ones(30), np.zeros(300)], sizes)
    with_y = StratifiedGroupRatioSplit((0.8, 0.1, 0.1), random_state=1).assign(np.zeros(groups.size), y.astype(str), groups)
    assert with_y.stratum_shares.shape[0] == 2
    assert np.all(np.abs(with_y.stratum_shares - (0.8, 0.1, 0.1)) <= 0.02)


def test_input_errors():
    X = np.zeros(10)
    with pytest.raises(InputError, match="groups is required"):
        next(StratifiedGroupRatioSplit().split(X))
    with pytest.raises(InputError, match="one label per row"):
        next(StratifiedGroupRatioSplit().split(X, groups=np.zeros(9)))
    with pytest.raises(InputError, match="sum to 1"):
        next(StratifiedGroupRatioSplit(ratios=(0.5, 0.6)).split(X, groups=np.arange(10)))

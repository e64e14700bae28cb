"""Merging articles that share a chunk vector, and per-article statistics after the merge."""

from __future__ import annotations

import numpy as np

from lvmdiag.resplit.pool import merge_shared_vectors, merge_stats
from lvmdiag.resplit.strata import ArticleStats


def test_groups_sharing_a_vector_are_merged_transitively_and_zero_vectors_never_link():
    # 5 groups; chunk hashes: g0-g1 share 11, g1-g3 share 22 (so 0,1,3 is one component); g2 and g4
    # share only a zero vector (hash 99, marked not ok), so they stay apart.
    labels = [np.array([0, 1, 2]), np.array([3, 4])]
    chunk = [np.array([[11, 1], [11, 22], [99, 5]], np.uint64), np.array([[22, 7], [99, 8]], np.uint64)]
    ok = [np.array([[True, True], [True, True], [False, True]]), np.array([[True, True], [False, True]])]
    remap, n_merged = merge_shared_vectors(labels, chunk, ok, 5)
    assert n_merged == 2
    assert remap[0] == remap[1] == remap[3]
    assert len({remap[0], remap[2], remap[4]}) == 3
    np.testing.assert_array_equal(np.unique(remap), np.arange(3))  # dense codes


def test_no_shared_vectors_is_the_identity():
    labels = [np.array([0, 1])]
    chunk = [np.array([[1, 2], [3, 4]], np.uint64)]
    remap, n = merge_shared_vectors(labels, chunk, [np.ones((2, 2), bool)], 2)
    assert n == 0 and remap.tolist() == [0, 1]


def test_merged_statistics_are_window_weighted():
    pre = ArticleStats(np.array([2, 6, 4]), np.array([0.1, 0.5, 0.2]), np.array([[1.0], [3.0], [0.0]]))
    post = merge_stats(pre, np.array([0, 0, 1]), 2)
    np.testing.assert_array_equal(post.n_windows, [8, 4])
    np.testing.assert_allclose(post.mean_delta, [(2 * 0.1 + 6 * 0.5) / 8, 0.2])
    np.testing.assert_allclose(post.centroids, [[(2 * 1 + 6 * 3) / 8], [0.0]])

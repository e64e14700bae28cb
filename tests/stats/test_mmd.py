"""RBF MMD through random Fourier features, checked against the exact O(n^2) kernel."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist

from lvmdiag.errors import InputError
from lvmdiag.stats.mmd import RandomFourierFeatures, median_bandwidth, mmd2_biased_exact, rbf_kernel
from lvmdiag.stats.two_sample import group_mean_distance


def test_median_bandwidth_is_the_median_pairwise_distance():
    x = np.random.default_rng(0).standard_normal((60, 5))
    assert median_bandwidth(x) == pytest.approx(np.median(pdist(x)), rel=1e-9)
    with pytest.raises(InputError):
        median_bandwidth(x[:1])


def test_rff_kernel_error_within_hoeffding_bound():
    # each feature product 2 cos(a) cos(b) lies in [-2, 2]: P(|k_hat - k| > eps) <= 2 exp(-D eps^2 / 8).
    # With D = 4096 and eps = 0.2 that bound is 2 exp(-20.5) ~ 2.5e-9 per entry, 400 entries.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 8))
    sigma = median_bandwidth(x)
    f = RandomFourierFeatures.create(8, 4096, sigma, rng=2)
    phi = f.transform(x).astype(np.float64)
    err = np.abs(phi @ phi.T - rbf_kernel(x, x, sigma))
    assert err.max() < 0.2
    # and the errors are unbiased noise of size ~ 1/sqrt(D): mean absolute error well below 0.2
    assert err.mean() < 4 / np.sqrt(4096)


def test_mean_feature_distance_is_the_v_statistic_of_the_rff_kernel():
    # exact identity: ||mean phi(A) - mean phi(B)||^2 == mean K_aa + mean K_bb - 2 mean K_ab for K = phi phi^T
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((30, 6)), rng.standard_normal((45, 6)) + 0.3
    f = RandomFourierFeatures.create(6, 256, 2.0, rng=4)
    pa, pb = f.transform(a).astype(np.float64), f.transform(b).astype(np.float64)
    slow = (pa @ pa.T).mean() + (pb @ pb.T).mean() - 2 * (pa @ pb.T).mean()
    sums = np.vstack([pa, pb])  # one unit per row
    in_a = np.r_[np.ones(30), np.zeros(45)]
    fast = group_mean_distance(in_a[None], 1 - in_a[None], sums, np.ones(75)).sq_distance[0]
    assert fast == pytest.approx(slow, rel=1e-9, abs=1e-12)


def test_rff_mmd_is_an_unbiased_estimate_of_the_exact_mmd():
    # ||mean phi(a) - mean phi(b)||^2 = mean_j g_j with g_j = 2 (mean_a cos_j - mean_b cos_j)^2, iid over
    # features j with E[g_j] = exact V-statistic MMD^2; so the error is within a few standard errors.
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((200, 4)), rng.standard_normal((200, 4)) * 2.0
    sigma = median_bandwidth(np.vstack([a, b]))
    exact = mmd2_biased_exact(a, b, sigma)
    f = RandomFourierFeatures.create(4, 8192, sigma, rng=6)
    scale = np.sqrt(2.0 / f.n_features)
    delta = (f.transform(a).mean(0).astype(np.float64) - f.transform(b).mean(0)) / scale
    g = 2 * delta**2
    se = g.std(ddof=1) / np.sqrt(g.size)
    assert abs(g.mean() - exact) < 4 * se
    assert exact > 10 * se  # the planted scale difference is a real, resolvable MMD

"""Maximum mean discrepancy with an RBF kernel, in linear memory through random Fourier features.

For k(x, y) = exp(-||x - y||^2 / (2 sigma^2)), Rahimi & Recht's features
phi(x) = sqrt(2/D) cos(W x + b), W ~ N(0, I / sigma^2), b ~ U[0, 2 pi], give phi(x).phi(y) ≈ k(x, y).
The biased (V-statistic) MMD^2 of the kernel k_hat(x, y) = phi(x).phi(y) is *exactly*
||mean phi(A) - mean phi(B)||^2, so it is computed from per-article feature sums (G x D), and a
permutation of whole articles costs one (B x G) @ (G x D) product instead of an N x N kernel
(see :func:`lvmdiag.stats.two_sample.group_mean_distance`).
Each kernel entry has error at most eps with probability >= 1 - 2 exp(-D eps^2 / 8) (Hoeffding,
each feature product lies in [-2, 2]); with D = 512 the typical entry error is ~ 1/sqrt(D) ≈ 0.044.
The permutation test is exact for the approximate kernel whatever D: the approximation changes the
power (a slightly different kernel), never the false-positive rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lvmdiag.errors import InputError
from lvmdiag.stats.resampling import as_rng


def median_bandwidth(sample: np.ndarray) -> float:
    """Median heuristic: the median pairwise Euclidean distance of ``sample`` (m x D, m small).

    Builds an m x m distance matrix, so callers pass a subsample (lvmdiag uses m <= 1000, stated in
    the output). Zero distances (duplicate rows) are ignored; returns 1.0 when all rows coincide.
    """
    x = np.asarray(sample, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise InputError(f"median_bandwidth needs a (m, D) sample with m >= 2; got shape {x.shape}.")
    sq = np.einsum("ij,ij->i", x, x)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    iu = np.triu_indices(x.shape[0], k=1)
    dist = np.sqrt(np.clip(d2[iu], 0.0, None))
    dist = dist[dist > 1e-12]
    return float(np.median(dist)) if dist.size else 1.0


@dataclass(frozen=True)
class RandomFourierFeatures:
    """A fixed random feature map for the RBF kernel of bandwidth ``sigma`` (construct with :meth:`create`)."""

    weights: np.ndarray  # (D_in, D_rff) float32, columns ~ N(0, I / sigma^2)
    offsets: np.ndarray  # (D_rff,) float32, ~ U[0, 2 pi]
    sigma: float

    @classmethod
    def create(cls, d_in: int, n_features: int, sigma: float, rng: np.random.Generator | int | None = 0
               ) -> "RandomFourierFeatures":
        """Draw ``n_features`` random features for inputs of dimension ``d_in``."""
        if n_features < 1 or sigma <= 0:
            raise InputError(f"need n_features >= 1 and sigma > 0; got {n_features} and {sigma}.")
        rng = as_rng(rng)
        w = rng.standard_normal((d_in, n_features)) / sigma
        b = rng.uniform(0.0, 2.0 * np.pi, n_features)
        return cls(w.astype(np.float32), b.astype(np.float32), float(sigma))

    @property
    def n_features(self) -> int:
        return int(self.offsets.shape[0])

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Features phi(x), (n, D_rff) float32; float32 keeps the 768 x D_rff product fast."""
        z = np.asarray(x, dtype=np.float32) @ self.weights  # (n, D_rff)
        z += self.offsets
        np.cos(z, out=z)
        z *= np.float32(np.sqrt(2.0 / self.n_features))
        return z


def rbf_kernel(x: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
    """Exact RBF kernel matrix (small inputs only: reference for tests and tiny samples)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d2 = (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] - 2 * x @ y.T
    return np.exp(-np.clip(d2, 0, None) / (2 * sigma**2))


def mmd2_biased_exact(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    """Biased (V-statistic) MMD^2 with the exact RBF kernel; O(n^2) memory, for small data only."""
    return float(rbf_kernel(x, x, sigma).mean() + rbf_kernel(y, y, sigma).mean() - 2 * rbf_kernel(x, y, sigma).mean())

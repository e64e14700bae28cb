"""Samples fixed by a hash instead of a random stream: uniform, reproducible, and the same for any sharding.

A row (or an article) is kept when a 64-bit mix of its integer index falls below a threshold (a rate),
or when its key is among the k smallest (bottom-k). Either rule depends only on the index and the salt,
so partial samples of shards merge into exactly the sample of one pass, and no generator is consumed.
"""

from __future__ import annotations

import numpy as np


def sample_keys(salt: int, ints: np.ndarray) -> np.ndarray:
    """A 64-bit pseudo-random key per integer (splitmix64 of salt + value)."""
    z = np.asarray(ints, dtype=np.int64).astype(np.uint64) + np.uint64(int(salt) % 2**64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def keep_at_rate(salt: int, ints: np.ndarray, rate: float) -> np.ndarray:
    """Bool per integer: kept with probability ``rate`` (all when rate >= 1), independently by its hash."""
    ints = np.asarray(ints)
    if rate >= 1.0:
        return np.ones(ints.shape, bool)
    return sample_keys(salt, ints) < np.uint64(int(max(rate, 0.0) * 2.0**64))

"""Row hashes: equal bytes give equal hashes everywhere; distinct rows do not collide."""

from __future__ import annotations

import numpy as np
import pytest

from lvmdiag.data.hashing import hash_rows, row_keys
from lvmdiag.data.recover import hash_rows as public_hash_rows


def test_public_from_recover():
    assert public_hash_rows is hash_rows


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_equal_rows_equal_hash_independent_of_block(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 7)).astype(dtype)
    h = hash_rows(x)
    assert h.dtype == np.uint64 and h.shape == (50,)
    np.testing.assert_array_equal(hash_rows(x[10:20]), h[10:20])
    np.testing.assert_array_equal(hash_rows(np.asfortranarray(x)), h)  # layout does not matter
    np.testing.assert_array_equal(hash_rows(x[::-1]), h[::-1])
    assert np.unique(h).size == 50


def test_no_collisions_on_many_near_identical_rows():
    """Rows differing in one bit of one coordinate, in every position: all hashes and keys distinct."""
    base = np.random.default_rng(1).standard_normal(64).astype(np.float32)
    words = np.tile(base.view(np.uint32), (64 * 32, 1))
    for j in range(64):
        for b in range(32):
            words[j * 32 + b, j] ^= np.uint32(1 << b)
    rows = words.view(np.float32)
    assert np.unique(hash_rows(rows)).size == rows.shape[0]
    assert np.unique(row_keys(rows), axis=0).shape[0] == rows.shape[0]
    # swapping two coordinates changes the hash (not a symmetric function of the words)
    swapped = base.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    assert hash_rows(base[None])[0] != hash_rows(swapped[None])[0]


@pytest.mark.parametrize("d", [16, 7])  # 64-bit words, and the 32-bit fallback for odd rows
def test_seeds_are_independent_and_keys_are_block_invariant(d):
    x = np.random.default_rng(2).standard_normal((100, d)).astype(np.float32)
    k = row_keys(x)
    assert k.shape == (100, 2) and k.dtype == np.uint64
    assert not np.array_equal(hash_rows(x, seed=0), hash_rows(x, seed=1))
    assert not np.array_equal(k[:, 0], k[:, 1])
    np.testing.assert_array_equal(row_keys(x[30:40]), k[30:40])
    assert np.unique(k, axis=0).shape[0] == 100


def test_signed_zero_is_a_different_vector_and_empty_input():
    z = np.zeros((2, 4), np.float32)
    z[1, 0] = -0.0
    h = hash_rows(z)
    assert h[0] != h[1]
    assert hash_rows(np.empty((0, 4), np.float32)).shape == (0,)
    assert row_keys(np.empty((0, 4), np.float32)).shape == (0, 2)

"""Exact-content row hashes: a multilinear hash of each row's bytes, vectorised over a block.

A row's bytes are read as 32-bit words w_j (16-bit words for float16) and hashed as
h = mix(sum_j a_j * w_j mod 2^64) with random odd 64-bit multipliers a_j fixed by ``seed``.
For two different rows the difference d_j = w_j - w'_j is non-zero somewhere, and the sum
collides only when sum_j a_j d_j = 0 mod 2^64, which over random a_j has probability at most
2^-32 (2^-64 for the typical low-bit differences of float data). :func:`row_keys` pairs two
independent seeds, so a silent merge of two different vectors needs both hashes to collide.
Identical bytes always hash identically, whatever block or file they come from.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


@lru_cache(maxsize=32)
def _multipliers(n_words: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([0x6C766D64, seed, n_words]))
    a = rng.integers(0, np.iinfo(np.uint64).max, size=n_words, dtype=np.uint64, endpoint=True)
    return a | np.uint64(1)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads every input bit over the output (uint64 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(30))
        h = h * np.uint64(0xBF58476D1CE4E5B9)
        h = h ^ (h >> np.uint64(27))
        h = h * np.uint64(0x94D049BB133111EB)
        h = h ^ (h >> np.uint64(31))
    return h


#: rows hashed per inner step: keeps the uint64 word buffer small enough (a few MB) to stay in cache
#: and be reused, instead of a fresh large allocation (page faults dominate otherwise)
_SUB_ROWS = 512


def _word_view(flat: np.ndarray) -> np.ndarray:
    """(n, W) view of contiguous rows as 32-bit words (16-bit or bytes when the row size needs it)."""
    n = flat.shape[0]
    nbytes = flat.shape[1] * flat.dtype.itemsize
    raw = flat.view(np.uint8).reshape(n, nbytes)
    if nbytes % 4 == 0:
        return raw.view(np.uint32)
    if nbytes % 2 == 0:
        return raw.view(np.uint16)
    return raw


def _hash_words(flat: np.ndarray, seeds: tuple[int, ...]) -> np.ndarray:
    """(n, len(seeds)) uint64 multilinear hashes of the rows of a contiguous 2-D array."""
    n = flat.shape[0]
    words = _word_view(flat)
    width = words.shape[1]
    a = np.stack([_multipliers(width, s) for s in seeds], axis=1)  # (W, S)
    out = np.empty((n, len(seeds)), dtype=np.uint64)
    buf = np.empty((min(n, _SUB_ROWS), width), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for start in range(0, n, _SUB_ROWS):
            stop = min(start + _SUB_ROWS, n)
            w = buf[: stop - start]
            np.copyto(w, words[start:stop], casting="unsafe")
            np.matmul(w, a, out=out[start:stop])  # uint64 matmul wraps mod 2^64
        out += np.uint64(width) * np.uint64(0x9E3779B97F4A7C15)
    return _mix(out)


def _flat(block: np.ndarray) -> np.ndarray:
    block = np.asarray(block)
    if block.ndim == 0:
        raise ValueError("hash_rows needs an array with at least one axis.")
    n = block.shape[0]
    width = int(np.prod(block.shape[1:], dtype=np.int64))
    return np.ascontiguousarray(block.reshape(n, width))


def hash_rows(block: np.ndarray, seed: int = 0) -> np.ndarray:
    """Exact-content 64-bit hash of every row of ``block``.

    Parameters
    ----------
    block : (n, ...) array of any fixed-size dtype; each row (everything after the first axis) is
        hashed from its raw bytes, so ``-0.0`` and ``0.0`` differ and equal bytes always agree.
    seed : selects an independent hash function (use two seeds, or :func:`row_keys`, when a
        collision must not merge two different rows).

    Returns
    -------
    (n,) uint64 hashes.
    """
    flat = _flat(block)
    if flat.shape[0] == 0:
        return np.empty(0, dtype=np.uint64)
    return _hash_words(flat, (int(seed),))[:, 0]


def row_keys(block: np.ndarray) -> np.ndarray:
    """(n, 2) uint64 keys: ``hash_rows`` with seeds 0 and 1, computed in one pass (a 128-bit identity).

    Two different rows get equal keys with probability at most 2^-66 (2^-128 for typical float
    differences). Rows are read as 32-bit words on purpose: hashing 64-bit words directly would be
    faster but a difference confined to a word's top bit (a sign flip) would then collide with
    probability 1/2.
    """
    flat = _flat(block)
    if flat.shape[0] == 0:
        return np.empty((0, 2), dtype=np.uint64)
    return _hash_words(flat, (0, 1))

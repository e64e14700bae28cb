"""Guarantees of a resplit, checked on what was actually written (read back from disk).

* every input window is in exactly one output, in the split its article was assigned to
  (per split, the multiset of window hashes read back equals the multiset planned from the inputs);
* no article is in two splits (the planned assignment maps each article to one split, and the
  window multisets above prove the files hold exactly the planned rows);
* no chunk vector is shared between splits (hashes of every non-zero context and target vector);
* achieved window shares are within the stated tolerance of the ratios.

A failed check raises :class:`GuaranteeError`: a resplit that cannot prove these is not a resplit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import LvmdiagError
from lvmdiag.results import Result, fmt, md_table

try:  # the data layer's exact-content row hash
    from lvmdiag.data.recover import hash_rows
except ImportError:  # pragma: no cover - older layout
    from lvmdiag.data.hashing import hash_rows


class GuaranteeError(LvmdiagError):
    """A resplit guarantee failed when the written outputs were read back."""


@dataclass(frozen=True)
class RowHashes:
    """Content hashes of one file's rows, from one streaming pass.

    Attributes
    ----------
    window : (N,) uint64 hash of each window (K context vectors and the target, in order)
    chunk : (N, K+1) uint64 hash of each context vector and the target
    chunk_ok : (N, K+1) bool, False for zero or non-finite vectors (never used to link or compare)
    """

    window: np.ndarray
    chunk: np.ndarray
    chunk_ok: np.ndarray


#: vector rows hashed at once: the hash widens each 32-bit word to uint64, so cap that copy at ~32 MB
_HASH_WORDS = 1 << 22


def _hash_vectors(x: np.ndarray) -> np.ndarray:
    """hash_rows over (n, D) vectors in sub-blocks, so the uint64 word copy stays small."""
    step = max(1, _HASH_WORDS // max(x.shape[1], 1))
    if x.shape[0] <= step:
        return hash_rows(x)
    return np.concatenate([hash_rows(x[i : i + step]) for i in range(0, x.shape[0], step)])


def block_hashes(ctx: np.ndarray, tgt: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(window hash (B,), chunk hashes (B, K+1), chunk ok (B, K+1)) of one block.

    The window hash is the hash of the K+1 chunk hashes in order, so a window is identified by its
    vectors without hashing its (K+1) x D floats twice.
    """
    b, k, d = ctx.shape
    chunks = np.empty((b, k + 1), dtype=np.uint64)
    chunks[:, :k] = _hash_vectors(ctx.reshape(b * k, d)).reshape(b, k)
    chunks[:, k] = _hash_vectors(tgt)
    ok = np.empty((b, k + 1), dtype=bool)
    ok[:, :k] = np.isfinite(ctx).all(axis=2) & (ctx != 0).any(axis=2)
    ok[:, k] = np.isfinite(tgt).all(axis=1) & (tgt != 0).any(axis=1)
    return hash_rows(chunks), chunks, ok


def row_hashes(
    seqset: SequenceSet, block_rows: int = 4096, progress: Callable[[int], None] | None = None
) -> RowHashes:
    """Hash every window and chunk vector of ``seqset`` streaming over row blocks."""
    n, k = seqset.n, seqset.k
    window = np.empty(n, dtype=np.uint64)
    chunk = np.empty((n, k + 1), dtype=np.uint64)
    ok = np.empty((n, k + 1), dtype=bool)
    for start, ctx, tgt in seqset.iter_blocks(block_rows):
        stop = start + ctx.shape[0]
        window[start:stop], chunk[start:stop], ok[start:stop] = block_hashes(ctx, tgt)
        if progress is not None:
            progress(ctx.shape[0])
    return RowHashes(window, chunk, ok)


@dataclass(frozen=True)
class Check(Result):
    """One guarantee: its name, whether it held, and the numbers behind it."""

    name: str
    passed: bool
    detail: str

    def to_markdown(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.detail}"


@dataclass(frozen=True)
class Verification(Result):
    """All guarantee checks of one resplit, read back from the written files.

    Attributes
    ----------
    checks : each guarantee with pass/fail and detail
    n_windows : windows per split as read back
    achieved : window share per split as read back
    ratios : target shares
    tolerance : stated bound on |achieved - ratio|
    """

    checks: tuple[Check, ...]
    n_windows: tuple[int, ...]
    achieved: tuple[float, ...]
    ratios: tuple[float, ...]
    tolerance: float

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_markdown(self) -> str:
        return md_table(
            ["guarantee (read back from disk)", "result", "detail"],
            [[c.name, "PASS" if c.passed else "FAIL", c.detail] for c in self.checks],
        )


def verify_outputs(
    outputs: Mapping[str, SequenceSet],
    expected_windows: Mapping[str, np.ndarray],
    ratios: Sequence[float],
    tolerance: float,
    groups_per_split: Mapping[str, np.ndarray],
    *,
    block_rows: int = 4096,
    check_ids: bool = True,
    progress: Callable[[int], None] | None = None,
) -> Verification:
    """Check every guarantee on the outputs as read back from disk.

    Parameters
    ----------
    outputs : split name -> SequenceSet loaded from the written file
    expected_windows : split name -> window hashes of the input rows planned for that split
    ratios, tolerance : targets and the stated bound on |achieved - target|
    groups_per_split : split name -> article codes assigned to it (must be pairwise disjoint)
    block_rows : rows per hashing block
    check_ids : when every output carries article ids, also require them disjoint across splits
        (off when grouping by another key, where one article may legitimately span groups)
    progress : optional callback with the number of rows just read

    Returns
    -------
    Verification
        One :class:`Check` per guarantee; ``passed`` is True only if all hold.
    """
    names = list(outputs)
    hashes = {name: row_hashes(outputs[name], block_rows, progress) for name in names}
    checks: list[Check] = []

    # every input window in exactly one output, in its planned split
    bad = []
    for name in names:
        got = np.sort(hashes[name].window)
        want = np.sort(np.asarray(expected_windows[name], dtype=np.uint64))
        if got.shape != want.shape or not np.array_equal(got, want):
            missing = np.setdiff1d(want, got).size
            extra = np.setdiff1d(got, want).size
            bad.append(f"{name}: {got.size} rows read, {want.size} planned ({missing} missing, {extra} unexpected)")
    n_in = sum(np.asarray(v).size for v in expected_windows.values())
    n_out = sum(h.window.size for h in hashes.values())
    checks.append(
        Check(
            "every input window in exactly one output",
            not bad and n_in == n_out,
            "; ".join(bad) if bad else f"{n_out} windows read back = {n_in} input windows, each in its planned split",
        )
    )

    # no article in two splits
    overlaps = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            common = np.intersect1d(groups_per_split[a], groups_per_split[b]).size
            if common:
                overlaps.append(f"{a}/{b}: {common} articles")
    n_groups = sum(np.asarray(g).size for g in groups_per_split.values())
    detail = f"{n_groups} articles, each written to one split only"
    if check_ids and all(outputs[n].article_ids is not None for n in names):
        # the files carry article ids: check them as read back, too
        ids = {n: np.unique(np.asarray(outputs[n].article_ids)) for n in names}
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                common = np.intersect1d(ids[a], ids[b]).size
                if common:
                    overlaps.append(f"{a}/{b}: {common} article ids read back in both")
        detail += " (article ids read back from the files are disjoint)"
    checks.append(
        Check(
            "no article in two splits",
            not overlaps and not bad,
            "; ".join(overlaps) if overlaps else detail,
        )
    )

    # no chunk vector shared across splits
    uniq = {}
    for name in names:
        h = hashes[name]
        uniq[name] = np.unique(h.chunk[h.chunk_ok])
    shared = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            c = np.intersect1d(uniq[a], uniq[b], assume_unique=True).size
            if c:
                shared.append(f"{a}/{b}: {c} vectors")
    checks.append(
        Check(
            "no chunk vector shared across splits",
            not shared,
            "; ".join(shared) if shared else f"{sum(u.size for u in uniq.values())} distinct non-zero vectors, none in two splits",
        )
    )

    # achieved ratios within the stated tolerance
    counts = np.array([hashes[n].window.size for n in names], dtype=np.int64)
    total = max(int(counts.sum()), 1)
    achieved = counts / total
    dev = np.abs(achieved - np.asarray(ratios, dtype=np.float64))
    worst = float(dev.max()) if dev.size else 0.0
    checks.append(
        Check(
            "window shares within tolerance",
            worst <= tolerance + 1e-12,
            f"largest |achieved - target| {fmt(worst, 5)} <= tolerance {fmt(tolerance, 5)}"
            if worst <= tolerance + 1e-12
            else f"largest |achieved - target| {fmt(worst, 5)} exceeds tolerance {fmt(tolerance, 5)}",
        )
    )
    return Verification(
        tuple(checks),
        tuple(int(c) for c in counts),
        tuple(float(a) for a in achieved),
        tuple(float(r) for r in ratios),
        float(tolerance),
    )

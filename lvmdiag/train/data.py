"""Turn a SequenceSet into the clean in-memory float32 arrays the trainer and the evaluator use."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import InputError, LvmdiagWarning


@dataclass(frozen=True)
class SplitArrays:
    """Usable rows of one split: contexts ``(N, K, D)`` and targets ``(N, D)`` float32, article ids or None."""

    name: str
    contexts: np.ndarray
    targets: np.ndarray
    article_ids: np.ndarray | None
    n_dropped: int

    @property
    def n(self) -> int:
        return int(self.targets.shape[0])

    def rows(self, rows: np.ndarray) -> "SplitArrays":
        """The same split restricted to ``rows`` (in that order)."""
        ids = None if self.article_ids is None else self.article_ids[rows]
        return SplitArrays(self.name, self.contexts[rows], self.targets[rows], ids, 0)


def prepare_split(seqset: SequenceSet, name: str | None = None) -> SplitArrays:
    """Copy the usable rows of ``seqset`` into float32 arrays.

    A row is dropped when the reader marked it invalid (``valid`` mask) or when any of its K + 1
    vectors is zero or non-finite (a failed encoder batch); a warning says how many. Raises
    ``InputError`` when no usable row remains.
    """
    name = name or seqset.name
    ctx = np.asarray(seqset.contexts, dtype=np.float32)
    tgt = np.asarray(seqset.targets, dtype=np.float32)
    if ctx.ndim != 3 or tgt.ndim != 2 or ctx.shape[0] != tgt.shape[0] or ctx.shape[2] != tgt.shape[1]:
        raise InputError(f"{name}: contexts must be (N, K, D) and targets (N, D); got {ctx.shape} and {tgt.shape}.")
    keep = np.ones(tgt.shape[0], dtype=bool) if seqset.valid is None else np.asarray(seqset.valid, dtype=bool).copy()
    keep &= np.isfinite(ctx).all(axis=(1, 2)) & np.isfinite(tgt).all(axis=1)
    keep &= (np.linalg.norm(ctx, axis=2) > 0).all(axis=1) & (np.linalg.norm(tgt, axis=1) > 0)
    n_dropped = int((~keep).sum())
    if n_dropped:
        warnings.warn(f"{name}: {n_dropped} of {keep.size} windows dropped (zero, non-finite or invalid vectors).",
                      LvmdiagWarning, stacklevel=2)
    if not keep.any():
        raise InputError(f"{name}: no usable windows (every row has a zero or non-finite vector).")
    ids = None if seqset.article_ids is None else np.asarray(seqset.article_ids)[keep]
    ctx, tgt = (ctx[keep], tgt[keep]) if n_dropped else (_writable(ctx), _writable(tgt))
    return SplitArrays(name, ctx, tgt, ids, n_dropped)


def _writable(a: np.ndarray) -> np.ndarray:
    """``a`` itself when torch can share it (writable and C-contiguous), else a C-contiguous copy.

    Readers may hand out read-only (e.g. memory-mapped with mode "r") arrays, which torch.from_numpy
    cannot share; an ordinary writable array is shared rather than copied, since a copy would double
    the peak memory of a real split (87k windows x 5 x 768 float32 = 1.3 GB). Nothing in the trainer
    writes into these arrays.
    """
    return a if a.flags.writeable and a.flags.c_contiguous else np.array(a, order="C")


def subsample_rows(n: int, size: int, seed: int) -> np.ndarray:
    """The fixed train subsample evaluated every epoch: ``min(size, n)`` sorted row indices drawn with ``seed``."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))

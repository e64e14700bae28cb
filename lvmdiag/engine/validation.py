"""Engine validation: the load-time scan's counts, computed inside the single pass (no separate read).

For sharded inputs the loader reads only headers, so validation travels with the blocks: per split,
windows holding a non-finite or an all-zero vector (every analyzer already excludes them on its own,
with the same definition), the range of vector norms, and exact duplicate windows: a window's key is
a hash of its K+1 chunk keys (the exact-content chunk hashes the block computes once for leakage too),
so the count is exact up to 64-bit hash collisions (probability ~N^2 2^-65) and merges across shards. Finalize issues the loader's
warnings and fails, in one line, when no usable window is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from lvmdiag.engine.block import Block, Part
from lvmdiag.engine.protocol import SinglePhase
from lvmdiag.errors import InputError
from lvmdiag.results import Result


@dataclass
class ValidationState:
    """Counts, norm range and window keys of the rows seen (merge: add, min/max, concatenate keys)."""

    n_rows: int = 0
    n_nonfinite: int = 0
    n_zero: int = 0
    norm_min: float = float("inf")
    norm_max: float = float("-inf")
    keys: list = field(default_factory=list)  # (b,) uint64 keys of usable windows

    def update(self, block: Block) -> None:
        from lvmdiag.data.hashing import hash_rows

        c, t = block.contexts, block.targets
        b, k, d = c.shape
        with np.errstate(over="ignore", invalid="ignore"):
            sq = np.empty((b, k + 1), dtype=np.float64)
            sq[:, :k] = np.einsum("bkd,bkd->bk", c, c, dtype=np.float64)
            sq[:, k] = np.einsum("bd,bd->b", t, t, dtype=np.float64)
        # a float64 sum of squares of float32 values is finite exactly when every value is (no overflow:
        # float32 max² ≈ 1e77 < float64 max), so the squared norms replace two passes of isfinite
        if c.dtype == np.float32 and t.dtype == np.float32:
            nonfinite = ~np.isfinite(sq).all(axis=1)
        else:
            nonfinite = ~(np.isfinite(c).all(axis=(1, 2)) & np.isfinite(t).all(axis=1))
        zero = (sq == 0).any(axis=1) & ~nonfinite
        ok = ~(nonfinite | zero)
        self.n_rows += b
        self.n_nonfinite += int(nonfinite.sum())
        self.n_zero += int(zero.sum())
        if ok.any():
            norms = np.sqrt(sq[ok])
            self.norm_min = min(self.norm_min, float(norms.min()))
            self.norm_max = max(self.norm_max, float(norms.max()))
            self.keys.append(hash_rows(np.ascontiguousarray(block.chunk_keys[ok])))

    def merge(self, other: "ValidationState") -> "ValidationState":
        self.n_rows += other.n_rows
        self.n_nonfinite += other.n_nonfinite
        self.n_zero += other.n_zero
        self.norm_min, self.norm_max = min(self.norm_min, other.norm_min), max(self.norm_max, other.norm_max)
        self.keys += other.keys
        return self

    def n_duplicates(self) -> int:
        if not self.keys:
            return 0
        _, counts = np.unique(np.concatenate(self.keys), return_counts=True)
        return int((counts - 1).sum())


@dataclass(frozen=True)
class ValidationSummary(Result):
    """Per split: rows, excluded rows by cause, duplicates and norm range."""

    splits: dict[str, dict[str, Any]]

    def to_markdown(self) -> str:
        return "\n".join(f"- {n}: {v}" for n, v in self.splits.items())


@dataclass
class ValidationAnalyzer(SinglePhase):
    """The loader's validation scan as an engine analyzer (used where the loader did not scan)."""

    name: str = "validation"

    def new_state(self, part: Part) -> ValidationState:
        return ValidationState()

    def finalize(self, states: Mapping[str, ValidationState], sources: Mapping[str, Any]) -> ValidationSummary:
        from lvmdiag.data.validate import NORM_TOL, warn

        out = {}
        for name, st in states.items():
            label = getattr(sources.get(name), "source", name)
            bad = st.n_nonfinite + st.n_zero
            if st.n_rows and bad == st.n_rows:
                raise InputError(f"every window of {label} has a zero or non-finite vector: nothing is left to "
                                 "analyse; re-embed the chunks.")
            if st.n_nonfinite:
                warn(f"{label}: {st.n_nonfinite} of {st.n_rows} windows contain NaN or Inf values; they are excluded "
                     "from the analysis (fix the encoder output to keep them).")
            if st.n_zero:
                warn(f"{label}: {st.n_zero} of {st.n_rows} windows contain an all-zero vector (a failed encoder "
                     "batch?); they are excluded from the analysis (re-embed those chunks to keep them).")
            dup = st.n_duplicates()
            if dup:
                warn(f"{label}: {dup} of {st.n_rows} windows are exact duplicates of another window; they are kept, "
                     "but they inflate sample sizes (deduplicate the data to remove them).")
            if np.isfinite(st.norm_min) and (abs(st.norm_min - 1) > NORM_TOL or abs(st.norm_max - 1) > NORM_TOL):
                warn(f"{label}: vectors are not unit-norm (norms {st.norm_min:.3g} to {st.norm_max:.3g}); analyzers "
                     "normalise them, so cosines are unaffected.")
            out[name] = {"n_rows": st.n_rows, "n_nonfinite": st.n_nonfinite, "n_zero": st.n_zero,
                         "n_used": st.n_rows - bad, "n_duplicates": dup,
                         "norm_min": st.norm_min if np.isfinite(st.norm_min) else float("nan"),
                         "norm_max": st.norm_max if np.isfinite(st.norm_max) else float("nan")}
        return ValidationSummary(out)

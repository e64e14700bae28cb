"""Validation of sequence files and article stores: one-line errors naming file, key and fix.

Hard problems (wrong shape, integer vectors, missing keys, corrupt archives, vectors that would need
unpickling) raise :class:`~lvmdiag.errors.InputError`. Legal but degraded input (zero-norm or
non-finite rows, non-unit norms, duplicate windows) is reported with a
:class:`~lvmdiag.errors.LvmdiagWarning` and, for unusable rows, a ``valid`` mask that excludes them.
Every scan streams over row blocks, so memory-mapped input is never read whole into memory.
"""

from __future__ import annotations

import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lvmdiag.data.hashing import hash_rows, row_keys
from lvmdiag.errors import InputError, LvmdiagWarning

#: key aliases seen in upstream loaders (UPSTREAM_FORMATS.md)
CONTEXT_ALIASES: tuple[str, ...] = ("contexts", "context", "X", "C", "context_sequences", "train_context_sequences")
TARGET_ALIASES: tuple[str, ...] = ("targets", "target", "y", "Y", "t", "target_vectors", "train_target_vectors")

#: bytes of float data per validation block (bounded memory for memory-mapped input)
BLOCK_BYTES = 64 * 2**20
#: a vector norm further than this from 1 counts as "not unit norm"
NORM_TOL = 1e-2

ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, ValueError)


def warn(message: str) -> None:
    """Issue an :class:`LvmdiagWarning` attributed to the caller of the public reader."""
    warnings.warn(message, LvmdiagWarning, stacklevel=4)


def corrupt_error(fname: str, key: str | None, exc: BaseException) -> InputError:
    """The one-line error for a truncated or corrupt archive member."""
    where = f"`{key}` in {fname}" if key else fname
    return InputError(
        f"{where} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'corrupt data'}); "
        "the file looks truncated or corrupt: copy or regenerate it."
    )


def require_float(dtype: np.dtype, key: str, fname: str, allow_pickle: bool = False) -> str | None:
    """Refuse non-float vectors; return a note for float16/float64 (accepted, analysed as float32)."""
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise InputError(
            f"`{key}` in {fname} is an object array; reading it needs unpickling, which can run code "
            "from the file: pass --allow-pickle (allow_pickle=True) only if you trust it, or re-save it as float32."
            if not allow_pickle
            else f"`{key}` in {fname} is an object array, not float vectors: re-save it as a float32 array."
        )
    if dtype.kind != "f":
        raise InputError(
            f"`{key}` in {fname} must be a float array; got {dtype}. "
            "Convert it with arr.astype(np.float32) and save the file again."
        )
    if dtype != np.float32:
        return f"`{key}` is {dtype}; analysed as float32"
    return None


def check_sequence_shapes(
    cshape: tuple[int, ...], tshape: tuple[int, ...], fname: str, ckey: str, tkey: str
) -> None:
    """Contexts (N, K, D), targets (N, D), the same N and D, and N > 0."""
    if len(cshape) != 3:
        raise InputError(f"`{ckey}` in {fname} must have shape (N, K, D); got {tuple(cshape)}.")
    if len(tshape) != 2:
        raise InputError(f"`{tkey}` in {fname} must have shape (N, D); got {tuple(tshape)}.")
    if cshape[0] != tshape[0]:
        raise InputError(
            f"`{ckey}` and `{tkey}` in {fname} must have the same number of rows N; "
            f"got {cshape[0]} and {tshape[0]}."
        )
    if cshape[2] != tshape[1]:
        raise InputError(
            f"`{ckey}` in {fname} has vectors of dimension {cshape[2]} but `{tkey}` has {tshape[1]}; "
            "both must come from the same encoder."
        )
    if cshape[0] == 0:
        raise InputError(f"`{ckey}` in {fname} has no rows (N = 0): the file is empty; regenerate it.")
    if cshape[1] == 0 or cshape[2] == 0:
        raise InputError(f"`{ckey}` in {fname} must have K >= 1 and D >= 1; got shape {tuple(cshape)}.")


@dataclass(frozen=True)
class ScanReport:
    """What a validation scan found (stored in ``SequenceSet.attrs['validation']``)."""

    n_rows: int
    n_nonfinite: int
    n_zero: int
    n_duplicates: int
    norm_min: float
    norm_max: float
    valid: np.ndarray | None = field(repr=False, default=None)
    notes: tuple[str, ...] = ()
    mode: str = "full"
    n_scanned: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "n_rows": self.n_rows,
            "n_nonfinite": self.n_nonfinite,
            "n_zero": self.n_zero,
            "n_duplicates": self.n_duplicates,
            "norm_min": self.norm_min,
            "norm_max": self.norm_max,
            "notes": list(self.notes),
            "mode": self.mode,
            "n_scanned": self.n_scanned,
        }


def block_rows_for(row_bytes: int) -> int:
    """Rows per block so one block of float32 data stays within ``BLOCK_BYTES``."""
    return int(max(1, min(1 << 16, BLOCK_BYTES // max(1, row_bytes))))


#: memory-mapped inputs with more vector bytes than this are validated on a sample by default
FULL_SCAN_BYTES = 8 * 2**30
#: rows per sampled block, and how many blocks a sampled scan reads
SAMPLE_BLOCK_ROWS = 1024
SAMPLE_BLOCKS = 64
#: coordinates of the target used as the cheap duplicate-candidate key (confirmed on whole windows)
_PROBE_COORDS = 8


def scan_sequences(
    contexts: np.ndarray,
    targets: np.ndarray,
    fname: str,
    ckey: str = "contexts",
    tkey: str = "targets",
    notes: Sequence[str] = (),
    check_duplicates: bool = True,
    scan: str = "auto",
) -> ScanReport:
    """Stream over row blocks: non-finite and zero-norm rows (masked), norm range, duplicate windows.

    A window is unusable when any of its K + 1 vectors is non-finite or has zero norm (a failed
    encoder batch stored as zeros). Duplicate windows (identical in all K + 1 vectors) are found
    from a key of a few target coordinates, then confirmed with a 128-bit key of the whole window,
    so the count is exact. Warnings are issued here; nothing is raised for legal data.

    ``scan`` is "full" (every row), "sample" (evenly spaced blocks, ``valid`` stays None and the
    counts describe the sample), "none" (no read: the caller validates in its own pass) or "auto": full unless the input is memory-mapped and holds more
    than ``FULL_SCAN_BYTES`` of vectors, where a full scan would cost as much as the analysis itself.
    """
    n, k, d = contexts.shape
    if scan not in ("auto", "full", "sample", "none"):
        raise InputError(f"scan must be 'auto', 'full', 'sample' or 'none'; got {scan!r}.")
    if scan == "none":  # the caller validates inside its own pass (lvmdiag.engine.validation)
        return ScanReport(n, 0, 0, 0, float("nan"), float("nan"), None, tuple(notes), "none", 0)
    nbytes = n * (k + 1) * d * np.dtype(contexts.dtype).itemsize
    # memory-mapped or read on demand from a columnar file (lvmdiag.data.lazy): not in memory
    mapped = any(isinstance(a, np.memmap) or getattr(a, "lazy", False) for a in (contexts, targets))
    sampled = scan == "sample" or (scan == "auto" and mapped and nbytes > FULL_SCAN_BYTES)
    if sampled and n > SAMPLE_BLOCK_ROWS * SAMPLE_BLOCKS:
        starts = np.linspace(0, n - SAMPLE_BLOCK_ROWS, SAMPLE_BLOCKS).astype(np.int64)
        spans = [(int(s0), int(s0) + SAMPLE_BLOCK_ROWS) for s0 in starts]
    else:
        sampled = False
        step = block_rows_for((k + 1) * d * 4)
        spans = [(s0, min(s0 + step, n)) for s0 in range(0, n, step)]
    bad_nonfinite = np.zeros(n, dtype=bool)
    bad_zero = np.zeros(n, dtype=bool)
    seen = np.zeros(n, dtype=bool) if sampled else None
    probe_cols = np.unique(np.linspace(0, d - 1, min(d, _PROBE_COORDS)).astype(np.int64))
    probe = np.empty(n, dtype=np.uint64) if check_duplicates else None
    norm_min, norm_max = np.inf, -np.inf
    for start, stop in spans:
        c = np.asarray(contexts[start:stop], dtype=np.float32)  # (b, K, D)
        t = np.asarray(targets[start:stop], dtype=np.float32)  # (b, D)
        with np.errstate(over="ignore", invalid="ignore"):
            sq = np.empty((stop - start, k + 1), dtype=np.float32)
            sq[:, :k] = np.einsum("ij,ij->i", c.reshape(-1, d), c.reshape(-1, d)).reshape(-1, k)
            sq[:, k] = np.einsum("ij,ij->i", t, t)
        finite = np.isfinite(sq)
        if not finite.all():
            rows = np.flatnonzero(~finite.all(axis=1))
            # an overflowing square sum is not a NaN/Inf entry: confirm on the few rows concerned
            truly = ~(np.isfinite(c[rows]).all(axis=(1, 2)) & np.isfinite(t[rows]).all(axis=1))
            bad_nonfinite[start + rows[truly]] = True
        zero = (sq == 0).any(axis=1)
        bad_zero[start:stop] = zero & ~bad_nonfinite[start:stop]
        usable = finite & (sq > 0)
        if usable.any():
            norms = np.sqrt(sq[usable].astype(np.float64))
            norm_min = min(norm_min, float(norms.min()))
            norm_max = max(norm_max, float(norms.max()))
        if probe is not None:
            probe[start:stop] = hash_rows(np.ascontiguousarray(t[:, probe_cols]))
        if seen is not None:
            seen[start:stop] = True
    bad = bad_nonfinite | bad_zero
    n_dup = 0
    if probe is not None:
        n_dup = _count_duplicate_windows(contexts, targets, probe, ~bad if seen is None else (~bad & seen))
    return finish_scan(bad_nonfinite, bad_zero, norm_min, norm_max, n_dup, seen, sampled, nbytes, fname, ckey, tkey, notes)


def finish_scan(
    bad_nonfinite: np.ndarray,
    bad_zero: np.ndarray,
    norm_min: float,
    norm_max: float,
    n_dup: int,
    seen: np.ndarray | None,
    sampled: bool,
    nbytes: int,
    fname: str,
    ckey: str,
    tkey: str,
    notes: Sequence[str],
) -> ScanReport:
    """Warnings, the all-unusable error and the :class:`ScanReport` of a finished scan (window or chunk level)."""
    n = bad_nonfinite.size
    bad = bad_nonfinite | bad_zero
    notes = list(notes)
    cols = f"`{ckey}`" if ckey == tkey else f"`{ckey}`/`{tkey}`"  # a store: one vector column
    n_nonfinite, n_zero = int(bad_nonfinite.sum()), int(bad_zero.sum())
    n_seen = n if seen is None else int(seen.sum())
    of = f"of {n}" if seen is None else f"in a sample of {n_seen} of {n}"
    if sampled:
        notes.append(f"validated a sample of {n_seen} of {n} windows (memory-mapped input larger than {FULL_SCAN_BYTES >> 30} GiB)")
        warn(
            f"{fname}: {nbytes / 2**30:.1f} GiB memory-mapped: validated a sample of {n_seen} of {n} windows "
            "(pass scan='full' to check every row); analyzers still skip zero or non-finite rows as they stream."
        )
    if not sampled and n_nonfinite + n_zero == n:
        raise InputError(
            f"every window in {fname} has a zero or non-finite vector in {cols}: "
            "nothing is left to analyse; re-embed the chunks."
        )
    if n_nonfinite:
        warn(
            f"{fname}: {n_nonfinite} {of} windows contain NaN or Inf values in {cols}; "
            "they are excluded from the analysis (fix the encoder output to keep them)."
        )
    if n_zero:
        warn(
            f"{fname}: {n_zero} {of} windows contain an all-zero vector in {cols} "
            "(a failed encoder batch?); they are excluded from the analysis (re-embed those chunks to keep them)."
        )
    if np.isfinite(norm_min) and (abs(norm_min - 1) > NORM_TOL or abs(norm_max - 1) > NORM_TOL):
        note = f"vector norms range {norm_min:.3g}..{norm_max:.3g}, not 1"
        notes.append(note)
        warn(
            f"{fname}: vectors in {cols} are not unit-norm (norms {norm_min:.3g} to {norm_max:.3g}); "
            "analyzers normalise them, so cosines are unaffected."
        )
    if n_dup:
        warn(
            f"{fname}: {n_dup} {of} windows in {cols} are exact duplicates of an earlier window; "
            "they are kept, but they inflate sample sizes (deduplicate the file to remove them)."
        )
    return ScanReport(
        n_rows=n,
        n_nonfinite=n_nonfinite,
        n_zero=n_zero,
        n_duplicates=n_dup,
        norm_min=float(norm_min) if np.isfinite(norm_min) else float("nan"),
        norm_max=float(norm_max) if np.isfinite(norm_max) else float("nan"),
        valid=None if (sampled or not bad.any()) else ~bad,
        notes=tuple(notes),
        mode="sample" if sampled else "full",
        n_scanned=n_seen,
    )


def _count_duplicate_windows(
    contexts: np.ndarray, targets: np.ndarray, target_hash: np.ndarray, usable: np.ndarray
) -> int:
    """Windows identical to an earlier one; candidates share a probe hash, confirmed on whole windows."""
    rows = np.flatnonzero(usable)
    h = target_hash[rows]
    order = np.argsort(h, kind="stable")
    hs = h[order]
    same_as_prev = np.r_[False, hs[1:] == hs[:-1]]
    if not same_as_prev.any():
        return 0
    in_group = same_as_prev | np.r_[same_as_prev[1:], False]
    cand = np.sort(rows[order[in_group]])
    step = block_rows_for((contexts.shape[1] + 1) * contexts.shape[2] * 4)
    keys = np.empty((cand.size, 2), dtype=np.uint64)
    for s in range(0, cand.size, step):
        r = cand[s : s + step]
        # native dtype: exact identity (a float64 file is not rounded to float32 first)
        window = np.concatenate([np.asarray(contexts[r]).reshape(r.size, -1), np.asarray(targets[r])], axis=1)
        keys[s : s + r.size] = row_keys(window)
    _, counts = np.unique(keys, axis=0, return_counts=True)
    return int((counts - 1).sum())


def check_compatible(seqsets: Sequence[Any]) -> None:
    """Raise :class:`InputError` when window length K or dimension D differ across files.

    Parameters
    ----------
    seqsets : SequenceSet objects (train, val, ood, ...) to be analysed together.
    """
    seqsets = list(seqsets)
    if not seqsets:
        return
    first = seqsets[0]
    for other in seqsets[1:]:
        if other.d != first.d:
            raise InputError(
                f"{other.source} has {other.d}-d vectors but {first.source} has {first.d}-d: "
                "all files must come from the same encoder."
            )
        if other.k != first.k:
            raise InputError(
                f"{other.source} has windows of K = {other.k} context chunks but {first.source} has K = {first.k}: "
                "rebuild the files with the same window length."
            )


def missing_keys_error(fname: str, found: Sequence[str], what: str) -> InputError:
    """The error for a file whose keys match no known form."""
    shown = ", ".join(f"`{k}`" for k in list(found)[:12]) or "none"
    if len(found) > 12:
        shown += f", ... ({len(found)} keys)"
    return InputError(
        f"{fname} has no {what}: keys found {shown}; expected contexts as one of "
        f"{', '.join(CONTEXT_ALIASES)} and targets as one of {', '.join(TARGET_ALIASES)}, "
        "or an article store with `vectors`, or a directory with contexts.npy and targets.npy."
    )


def file_label(path: str | Path) -> str:
    """How a file is named in messages (the path as given)."""
    return str(path)

"""Ranges of the numeric arguments every entry point shares, checked in one place.

The CLI checks each option against the same :class:`Range` while parsing (before any work starts);
the library's ``_iv`` functions call :func:`check` so the Python API refuses the same values with an
:class:`~lvmdiag.errors.InputError` instead of a numpy traceback or a silently skipped section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lvmdiag.errors import InputError


@dataclass(frozen=True)
class Range:
    """An interval of allowed values; ``integer`` also requires a whole number."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            return False
        if self.integer and not isinstance(value, (int, np.integer)):
            return False
        v = float(value)
        if math.isnan(v):
            return False
        if self.lo is not None and not (v > self.lo if self.lo_open else v >= self.lo):
            return False
        if self.hi is not None and not (v < self.hi if self.hi_open else v <= self.hi):
            return False
        return math.isfinite(v)

    def describe(self) -> str:
        """``>= 0``, ``in (0, 1)``, ``in (-1, 1]``: the wording every message and help text uses."""
        kind = "an integer" if self.integer else "a number"
        if self.lo is not None and self.hi is not None:
            return f"{kind} in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{kind} {'>' if self.lo_open else '>='} {_num(self.lo)}"
        if self.hi is not None:
            return f"{kind} {'<' if self.hi_open else '<='} {_num(self.hi)}"
        return f"a finite {kind.split()[-1]}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# The ranges shared by the commands and the library (one definition each).
SEED = Range(0, integer=True)  # numpy seeds must be >= 0
COUNT = Range(1, integer=True)  # block rows, resamples, bins, window length, ...
NONNEG_INT = Range(0, integer=True)
PROBABILITY_OPEN = Range(0, 1, lo_open=True, hi_open=True)  # alpha, confidence level
COSINE_THRESHOLD = Range(-1, 1, lo_open=True)  # at -1 every pair of chunks would be a "near-duplicate"
COSINE = Range(-1, 1)
UNIT = Range(0, 1)
POSITIVE = Range(0, lo_open=True)
NONNEG = Range(0)
FINITE = Range()
N_PERMUTATIONS = COUNT  # or "auto" (lvmdiag.stats.sequential.resolve_cap)
N_BOOTSTRAP = COUNT


def check(name: str, value: Any, allowed: Range) -> Any:
    """Return ``value`` when ``allowed`` contains it, else raise InputError naming ``name``."""
    if not allowed.contains(value):
        raise InputError(f"{name} must be {allowed.describe()}; got {value!r}.")
    return value


def check_seed(rng: Any, name: str = "seed") -> None:
    """A seed is None, a Generator/SeedSequence, or an integer >= 0 (numpy refuses negative seeds)."""
    if rng is None or isinstance(rng, (np.random.Generator, np.random.SeedSequence, np.random.BitGenerator)):
        return
    check(name, rng, SEED)


def check_options(*, n_permutations: Any = None, n_bootstrap: Any = None, threshold: Any = None,
                  alpha: Any = None, rng: Any = None) -> None:
    """The resampling options a report shares, checked before any file is read (None = not used)."""
    if n_permutations is not None and not (isinstance(n_permutations, str) and n_permutations.strip().lower() == "auto"):
        try:
            count = int(n_permutations) if isinstance(n_permutations, str) else n_permutations
        except ValueError:
            raise InputError(f"n_permutations must be {N_PERMUTATIONS.describe()} or 'auto'; "
                             f"got {n_permutations!r}.") from None
        check("n_permutations", count, N_PERMUTATIONS)
    for name, value, allowed in (("n_bootstrap", n_bootstrap, N_BOOTSTRAP),
                                 ("threshold", threshold, COSINE_THRESHOLD), ("alpha", alpha, PROBABILITY_OPEN)):
        if value is not None:
            check(name, value, allowed)
    check_seed(rng)

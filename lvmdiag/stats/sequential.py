"""Monte-Carlo p-values that draw as many replicates as their decision needs (curtailed sampling).

With B replicates the smallest p-value is 1/(B+1). Benjamini-Hochberg over a family of m tests
rejects a lone effect only if p <= alpha/m, so B must reach about m/alpha - 1 for a lone effect to be
reportable at all (m = 35, alpha = 0.05: B >= 699; 200 permutations could never do it). Drawing that
many replicates for every test would be wasteful: most tests are clearly null after a hundred.

The rule used here is *deterministic curtailment* of the fixed-cap test. Replicates are drawn in
batches, up to ``cap``. After each batch, a test whose exceedance count g already satisfies
(g + 1) / (cap + 1) > alpha stops: its p-value at the full cap would exceed alpha, so no
correction can ever reject it, and its decision is already that of the fixed-cap test. Tests that
could still reject keep drawing until the cap. Hence every rejection (raw or Benjamini-Hochberg
within a family, whose thresholds never exceed alpha) is exactly a rejection of the ordinary
permutation test with ``cap`` replicates, which is exact, while null tests cost ~ (alpha (cap+1)) / p
replicates instead of ``cap``. A stopped test reports p = (g+1)/(L+1) over the L replicates drawn
(which exceeds alpha by construction) and its Monte-Carlo standard error sqrt(p (1-p) / L).
(Besag & Clifford 1991 stop at a fixed number of exceedances instead; curtailment keeps the
decisions identical to the fixed-cap test, which makes them reproducible across batch sizes.)

``cap`` comes from :func:`resolve_cap`: "auto" picks the smallest cap whose floor 1/(cap+1) is at
most alpha / (1.1 m) for the test's family of m tests, so a lone effect in the family can be reported
(BH rejects it when p <= alpha / m; the 10% margin keeps that true through float rounding and lets a
lone effect with one exceedance near the floor count too, at a cost near that of the bare minimum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from lvmdiag.errors import InputError

#: replicates always drawn before a test may stop (keeps permutation intervals informative)
MIN_REPLICATES = 99
#: the smallest cap "auto" chooses
MIN_AUTO_CAP = 199
#: the floor 1/(cap+1) is at most alpha / (FLOOR_MARGIN * m)
FLOOR_MARGIN = 1.1


def resolve_cap(n_permutations: int | str | None, family_size: int, alpha: float) -> int:
    """Replicates cap for a test in a family of ``family_size`` tests at level ``alpha``.

    "auto" (or None): the smallest cap with 1/(cap+1) <= alpha / (1.1 m), at least 199. An integer is
    used as given (the caller may warn, see :func:`floor_note`).
    """
    if n_permutations is None or (isinstance(n_permutations, str) and n_permutations.strip().lower() == "auto"):
        if not 0 < alpha < 1:
            raise InputError(f"alpha must be in (0, 1); got {alpha}.")
        m = max(int(family_size), 1)
        return max(MIN_AUTO_CAP, int(math.ceil(FLOOR_MARGIN * m / alpha)) - 1)
    try:
        cap = int(n_permutations)
    except (TypeError, ValueError):
        raise InputError(f"n_permutations must be a positive integer or 'auto'; got {n_permutations!r}.") from None
    if cap < 1:
        raise InputError(f"n_permutations must be >= 1 or 'auto'; got {n_permutations}.")
    return cap


def floor_note(cap: int, family_size: int, alpha: float, what: str) -> str:
    """A sentence when ``cap`` replicates cannot reach the level a lone effect needs in its family, else ''."""
    m = max(int(family_size), 1)
    if 1.0 / (cap + 1) <= alpha / m:
        return ""
    return (f"{what}: with at most {cap} resamples the smallest p-value is {1 / (cap + 1):.2g}, above "
            f"alpha/m = {alpha / m:.2g} for its family of {m} tests, so a lone effect there cannot be reported; "
            "use the default (auto) or a larger --n-permutations.")


def undecided_note(tests: Sequence[Any], alpha: float) -> str:
    """Why "no significant test" is no answer here, or '' when it is one.

    Undecided: no test is significant, and some test's family has too few resamples for a lone effect to
    reach alpha/m while that test's p is at most alpha or at its floor 1/(cap+1), so more resamples could
    make it significant. A p above both is read as "no" (with few resamples it is itself uncertain: its
    Monte-Carlo error is in the JSON).
    """
    if any(t.status(alpha) == "significant" for t in tests):
        return ""
    short = [t for t in tests if not t.can_reach(alpha)
             and t.pvalue <= max(alpha, 1.0 / (t.n_resamples_cap + 1)) * (1 + 1e-9)]
    if not short:
        return ""
    worst = max(short, key=lambda t: 1.0 / (t.n_resamples_cap + 1) * t.family_size)
    return (f"undecided at this resolution: with at most {worst.n_resamples_cap} resamples the smallest p-value is "
            f"{1 / (worst.n_resamples_cap + 1):.2g}, above alpha/m = {alpha / worst.family_size:.2g} for a family of "
            f"{worst.family_size} tests, and {len(short)} test(s) reached p ≤ {max(alpha, 1 / (worst.n_resamples_cap + 1)):.2g}: "
            "more permutations could make them significant (the default, auto, sizes them for each family)")


@dataclass(frozen=True)
class McPValue:
    """One curtailed Monte-Carlo p-value."""

    pvalue: float
    n_used: int
    exceedances: int
    stopped_early: bool
    cap: int

    @property
    def mc_error(self) -> float:
        """Binomial Monte-Carlo standard error of the p-value estimate."""
        return float(math.sqrt(max(self.pvalue * (1.0 - self.pvalue), 0.0) / max(self.n_used, 1)))


class CurtailedTests:
    """Exceedance counts of T tests that share replicate batches, each stopping on its own.

    ``observed`` (T,) statistics; ``alternative`` "greater" (large is extreme), "less" or
    "two-sided" (|null| >= |observed|). Feed (b, T) null batches to :meth:`update` (columns of
    stopped tests are ignored, so callers may fill them with NaN); :attr:`active` says which tests
    still draw; :meth:`result` gives the p-values.
    """

    def __init__(self, observed: np.ndarray, cap: int, alpha: float, alternative: str = "greater",
                 min_replicates: int = MIN_REPLICATES) -> None:
        if alternative not in ("greater", "less", "two-sided"):
            raise InputError(f"alternative must be two-sided, greater or less; got {alternative!r}.")
        self.observed = np.atleast_1d(np.asarray(observed, dtype=np.float64))
        self.cap = int(cap)
        self.alpha = float(alpha)
        self.alternative = alternative
        self.min_replicates = min(int(min_replicates), self.cap)
        t = self.observed.size
        self.exceed = np.zeros(t, dtype=np.int64)
        self.used = np.zeros(t, dtype=np.int64)
        self.active = np.ones(t, dtype=bool)
        self._stopped_early = np.zeros(t, dtype=bool)
        # a test whose observed statistic is not finite cannot be tested: p = 1 at once
        bad = ~np.isfinite(self.observed)
        self.exceed[bad], self.used[bad], self.active[bad] = 0, 0, False

    def _extreme(self, null: np.ndarray) -> np.ndarray:
        obs = self.observed[None, :]
        with np.errstate(invalid="ignore"):
            if self.alternative == "greater":
                hit = null >= obs - 1e-12
            elif self.alternative == "less":
                hit = null <= obs + 1e-12
            else:
                hit = np.abs(null) >= np.abs(obs) - 1e-12
        return hit

    def next_batch_size(self, batch: int) -> int:
        """Replicates to draw next (0 when every test is done)."""
        if not self.active.any():
            return 0
        return int(min(batch, self.cap - self.used[self.active].max()))

    def update(self, null: np.ndarray) -> None:
        """Count the exceedances of a (b, T) batch for the active tests, then curtail."""
        null = np.asarray(null, dtype=np.float64)
        if null.ndim == 1:
            null = null[:, None]
        b = null.shape[0]
        hit = self._extreme(null)
        act = self.active
        self.exceed[act] += hit[:, act].sum(axis=0)
        self.used[act] += b
        # the fixed-cap p would exceed alpha whatever comes next: the decision is settled
        settled = (self.exceed + 1) / (self.cap + 1) > self.alpha
        stop = act & settled & (self.used >= self.min_replicates) & (self.used < self.cap)
        self._stopped_early |= stop
        self.active = act & ~stop & (self.used < self.cap)

    def result(self, j: int = 0) -> McPValue:
        """The p-value of test ``j``: (g+1)/(L+1) over the L replicates drawn (1 for an untestable one)."""
        used = int(self.used[j])
        p = 1.0 if used == 0 else (int(self.exceed[j]) + 1) / (used + 1)
        return McPValue(float(p), used, int(self.exceed[j]), bool(self._stopped_early[j]), self.cap)


def run_curtailed(observed: np.ndarray, draw, cap: int, alpha: float, alternative: str = "greater",
                  batch: int = 64, min_replicates: int = MIN_REPLICATES,
                  later_batch: int | None = None) -> tuple[CurtailedTests, np.ndarray]:
    """Draw null batches with ``draw(b, active) -> (b, T)`` until every test is settled or capped.

    The first batch has ``batch`` replicates, later ones ``later_batch`` (default ``batch``): when each
    batch costs a pass over the data, few large batches after a small first one keep the passes few
    while clear nulls still stop early.

    Returns the tests and every null replicate drawn (L_max, T), NaN where a test had stopped
    (for intervals built from the null, e.g. :func:`lvmdiag.stats.two_sample.flip_interval`).
    """
    tests = CurtailedTests(observed, cap, alpha, alternative, min_replicates)
    chunks = []
    while True:
        b = tests.next_batch_size(batch if not chunks or later_batch is None else later_batch)
        if b <= 0:
            break
        active = tests.active.copy()
        null = np.asarray(draw(b, active), dtype=np.float64).reshape(b, -1)
        null[:, ~active] = np.nan
        tests.update(null)
        chunks.append(null)
    nulls = np.vstack(chunks) if chunks else np.zeros((0, tests.observed.size))
    return tests, nulls


def test_fields(mc: McPValue) -> dict:
    """Keyword arguments of :class:`lvmdiag.results.TestResult` describing a curtailed p-value."""
    return {"pvalue": mc.pvalue, "n_resamples": mc.n_used, "mc_error": mc.mc_error, "n_resamples_cap": mc.cap}


test_fields.__test__ = False  # not a pytest test

"""Direction (arrow of time) analyzer: can the data tell forward from reversed order, and which way is forward?

Three parts, per split:

1. A direction classifier (:mod:`lvmdiag.analyzers.direction_classifier`): windows in their given
   order vs the same windows reversed, cross-validated by article, on features that change sign under
   reversal: the least-squares slope of the window's (normalised) vectors, which catches a drift shared
   by the articles, and the slope of cos(x_j, x_{j+L}) along the window for each lag L, which catches
   similarity changing along an article even when each article drifts its own way.
   AUC with a one-sided article-flip p-value and the one-sided lower confidence bound that inverts it
   (at level 1 - alpha, so it exceeds 0.5 exactly when p <= alpha). AUC > 0.5 means the order is detectable: the data are not
   time-reversible; a CV AUC below 0.5 means nothing (it is biased slightly below 0.5 under the null).
2. A signed direction score for every split other than the reference ("train"): the classifier
   fitted on the reference's given order, applied to the split's given order, D = 2 AUC - 1.
   D > 0: same direction as the reference; D < 0: the split runs backwards relative to it.
   Reversing every article of the split maps D to -D, while Delta = cos(c_last, t) - cos(c_0, t)
   is (up to window edges) unchanged: Delta measures similarity decay, not direction.
3. Lag-matched offsets: cos(x_j, x_{j+k}) vs cos(x_j, x_{j-k}) for equal k (around c_last, and
   pooled over every pivot of the K+1 window). Cosine is symmetric and a stationary process has the
   same lag-k similarity forwards and backwards, so these come out symmetric whatever the arrow of
   time: symmetric similarity profiles cannot reveal direction, which is why part 1 is needed.

Not included: comparing forward with backward *predictability* (a ridge predictor of the next vs the
previous chunk). For a stationary Gaussian process the two are equal by construction, and a linear
trend is as predictable backwards as forwards (only its sign changes), so that comparison is blind
to exactly the drift that the classifier detects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from lvmdiag.analyzers.direction_classifier import (
    check_enough_articles,
    cv_direction_test,
    fit_direction,
    signed_direction_test,
)
from lvmdiag.analyzers.direction_pass import LagMatched, delta_estimate, dense_labels, lag_matched_stats, stream_split
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import InputError
from lvmdiag.results import Estimate, Result, TestResult, fmt, fmt_p, md_table
from lvmdiag.stats.multiple_testing import adjust_by_family
from lvmdiag.stats.sequential import floor_note, resolve_cap, undecided_note
from lvmdiag.stats.resampling import as_rng, named_stream, stream_root

ProgressCallback = Callable[[int, int], None]

SYMMETRY_NOTE = (
    "Lag-matched offsets compare cos(x_j, x_{j+k}) with cos(x_j, x_{j-k}) at equal lag k. Cosine is "
    "symmetric, and for a stationary process the pair (j-k, j) is just a shifted copy of the pair "
    "(j, j+k), so both sides have the same expected similarity whichever way time runs (reversing an "
    "article only swaps the two sides). These numbers are therefore expected to be symmetric, and a "
    "symmetric similarity profile (like Δ, or cosines at two lags) can never reveal direction. An "
    "asymmetry here only shows non-stationarity along the article (similarity changing with position). "
    "Direction is tested by the classifier, which sees the order of the vectors, not only their similarities."
)


@dataclass(frozen=True)
class SplitDirection(Result):
    """Direction findings for one split.

    Attributes
    ----------
    split : split name
    n_windows : windows in the file
    n_used : windows with K+1 usable (non-zero, finite) vectors
    n_classifier : windows used by the classifier (``n_used`` or a random subset of ``max_windows``)
    n_articles : articles (groups) among the used windows
    classifier : CV-by-article AUC test (None when there are too few articles; see ``note``)
    signed : signed direction score vs the reference split (None for the reference itself)
    delta : mean Δ = cos(c_last, t) - cos(c_0, t) with an article-bootstrap CI
    lag_matched : forward vs backward similarity at equal lags
    note : why a part is missing, or caveats
    """

    split: str
    n_windows: int
    n_used: int
    n_classifier: int
    n_articles: int
    classifier: TestResult | None
    signed: TestResult | None
    delta: Estimate
    lag_matched: tuple[LagMatched, ...]
    note: str = ""

    def to_markdown(self) -> str:
        return f"{self.split}: {self.classifier.to_markdown() if self.classifier else '—'}"


def _fmt_test_p(test: TestResult | None) -> str:
    if test is None:
        return "—"
    text = fmt_p(test.pvalue, test.n_resamples)
    if test.pvalue_adjusted is not None:
        text += f" (BH {fmt_p(test.pvalue_adjusted, test.n_resamples)})"
    return text + f", {test.n_resamples} flips"


@dataclass(frozen=True)
class DirectionResult(Result):
    """Output of :func:`analyze_direction`.

    Attributes
    ----------
    splits : one :class:`SplitDirection` per input split, in input order
    reference : the split whose given order defines "forward" for the signed scores
    group_method : how articles were identified ("given", "recovered", "contiguous-blocks")
    group_note : the data layer's note on the grouping
    alpha : significance level used for the verdict
    """

    splits: tuple[SplitDirection, ...]
    reference: str
    group_method: str
    group_note: str
    alpha: float = 0.05

    def split(self, name: str) -> SplitDirection:
        for s in self.splits:
            if s.split == name:
                return s
        raise KeyError(name)

    def _tests(self, s: SplitDirection) -> list[TestResult]:
        return [t for t in (s.classifier, s.signed) if t is not None]

    def detected(self, name: str | None = None) -> bool:
        """True when a split's order is detectable after correction within its family: its own classifier,
        or the reference classifier's signed score (either sign), is significant."""
        chosen = self.splits if name is None else (self.split(name),)
        return any(t.status(self.alpha) == "significant" for s in chosen for t in self._tests(s))

    def reversed_splits(self) -> list[str]:
        """Splits whose signed score is significantly negative: they run backwards relative to the reference."""
        return [s.split for s in self.splits
                if s.signed is not None and s.signed.status(self.alpha) == "significant" and s.signed.statistic < 0]

    def aligned_splits(self) -> list[str]:
        """Splits whose signed score is significantly positive: they run the reference's way."""
        return [s.split for s in self.splits
                if s.signed is not None and s.signed.status(self.alpha) == "significant" and s.signed.statistic > 0]

    def nominal(self) -> list[tuple[str, TestResult]]:
        """(split, test) pairs whose interval or raw p shows a signal that the family correction does not confirm."""
        return [(s.split, t) for s in self.splits for t in self._tests(s) if t.status(self.alpha) == "nominal"]

    def _support(self, s: SplitDirection) -> str:
        """Which test shows that split ``s`` has an arrow of time (for a split :meth:`detected` holds).

        A split can be detected through the reference classifier's signed score while its own CV AUC is
        not significant (few articles); the verdict then says so instead of implying the CV AUC agrees.
        """
        c, g = s.classifier, s.signed
        c_sig = c is not None and c.status(self.alpha) == "significant"
        parts = ["CV AUC"] if c_sig else []
        if g is not None and g.status(self.alpha) == "significant":
            way = f"in {self.reference}'s direction" if g.statistic > 0 else f"BACKWARDS relative to {self.reference}"
            parts.append(f"signed score vs {self.reference}: runs {way}")
            if c is not None and c.status(self.alpha) == "none":  # a nominal CV AUC is listed after the verdict
                own = f"its own CV AUC {fmt(c.statistic)} is not significant"
                parts.append(f"{own}, p {fmt_p(c.pvalue, c.n_resamples)}")
        return "; ".join(parts)

    def verdict(self) -> str:
        """One-line summary for the top of a report; it never contradicts the intervals it summarises.

        Each split where order is detectable names the test that shows it (its own CV AUC, the signed
        score vs the reference, or both), so a split detected only through the signed score is never read
        as one whose own classifier found direction.
        """
        found = [s for s in self.splits if self.detected(s.split)]
        untested = [s.split for s in self.splits if s.classifier is None]
        if found:
            text = "order is detectable (not time-reversible) in " + ", ".join(
                f"{s.split} ({self._support(s)})" for s in found)
        else:
            tested = [s.split for s in self.splits if s.classifier is not None or s.signed is not None]
            undecided = undecided_note([t for s in self.splits for t in self._tests(s)], self.alpha)
            text = (f"direction {undecided}" if tested and undecided
                    else "no arrow of time detected after correction in " + ", ".join(tested)
                    if tested else "direction not tested")
        if untested:
            text += f" (classifier not run on {', '.join(untested)}: too few articles; see the notes)"
        for split, t in self.nominal():
            what = "AUC" if t is self.split(split).classifier else f"signed score vs {self.reference}"
            text += f"; {split}: {what} {t.evidence(self.alpha)}"
        return text

    @property
    def _pct(self) -> str:
        """Level of the classifier bound and the signed-score interval (1 - alpha: each inverts its test)."""
        return f"{100 * (1 - self.alpha):g}%"

    def to_markdown(self) -> str:
        lines = ["## Direction (arrow of time)", "", f"**Verdict:** {self.verdict()}.", ""]
        rows = []
        for s in self.splits:
            c, g = s.classifier, s.signed
            rows.append([
                s.split, s.n_used, s.n_articles,
                c.effect.to_markdown() if c else "—", _fmt_test_p(c),
                g.effect.to_markdown() if g else "(reference)" if s.split == self.reference else "—",
                _fmt_test_p(g),
                s.delta.to_markdown(),
            ])
        lines.append(md_table(
            ["split", "windows", "articles", f"CV AUC true vs reversed [one-sided {self._pct} bound]", "p",
             f"signed score vs {self.reference} [{self._pct} CI]", "p", "Δ [95% CI]"], rows))
        lines += [
            "",
            "- CV AUC: a linear classifier of given vs reversed window order, cross-validated by article; "
            "0.5 = order undetectable. p: whole articles' orientations flipped at random (valid when the data "
            "are time-reversible), (b+1)/(B+1) over the flips drawn (a test stops drawing once it cannot reach "
            "α; the rest get the full cap), with the Benjamini-Hochberg value in brackets, adjusted within the "
            "split's own family (its classifier and its signed score), so another split never changes it. "
            "The test is one-sided (is order detectable, AUC > 0.5?), and so is its bound: the lowest AUC the same flip test does not reject (the observed AUC minus the flip "
            f"null's upper tail above 0.5; upper end 1), so it exceeds 0.5 exactly when p ≤ {self.alpha:g}. Every null "
            "replicate refits the classifier, so the fit's own variability is included. A CV AUC below 0.5 is "
            "not evidence of anything: a cross-validated AUC falls slightly below 0.5 when there is nothing to learn.",
            f"- Signed score: 2·AUC−1 of the classifier fitted on {self.reference}'s given order; +1 = same "
            f"direction as {self.reference}, −1 = reversed. Reversing every article flips its sign; "
            "Δ does not change. p: two-sided, articles flipped at random; CI: the score plus/minus the flip "
            "null's spread (excludes 0 exactly when that test rejects).",
            "- Δ = cos(c_last, t) − cos(c_0, t): the same mean as in the temporal-bias report, shown because "
            "reversal leaves it unchanged (it measures similarity decay, not direction). Its CI is this section's own "
            "percentile article-bootstrap draw of the same kind, so next to a bias section its ends can differ by "
            "bootstrap noise (up to ~0.01 with 200 replicates on the bundled example); neither is the more "
            "correct one.",
            f"- Articles: {self.group_method}. {self.group_note}".rstrip(),
            "",
            "### Lag-matched offsets (expected symmetric)",
            "",
        ]
        lag_rows = []
        for s in self.splits:
            for m in s.lag_matched:
                p = fmt_p(m.pvalue, m.n_resamples) if m.pvalue is not None else "—"
                lag_rows.append([s.split, m.pivot, m.lag, fmt(m.forward), fmt(m.backward),
                                 m.difference.to_markdown(), p])
        lines.append(md_table(["split", "pivot", "k", "cos(x_j, x_j+k)", "cos(x_j, x_j−k)",
                               "forward − backward [95% CI]", "p"], lag_rows))
        lines += ["", SYMMETRY_NOTE]
        notes = [f"- {s.split}: {s.note}" for s in self.splits if s.note]
        if notes:
            lines += ["", "Notes:", *notes]
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# public entry point


def _analyze_direction_iv(splits: Mapping[str, SequenceSet] | SequenceSet, n_permutations: int | str,
                          n_bootstrap: int, n_folds: int, max_windows: int | None,
                          reference: str | None) -> tuple[dict[str, SequenceSet], str]:
    if isinstance(splits, SequenceSet):
        splits = {splits.split or "data": splits}
    if not isinstance(splits, Mapping) or not splits:
        raise TypeError("analyze_direction needs a SequenceSet or a non-empty dict of split name -> SequenceSet.")
    for name, s in splits.items():
        if not isinstance(s, SequenceSet):
            raise TypeError(f"split {name!r} must be a SequenceSet; got {type(s).__name__}.")
        if s.k < 1 or s.n == 0:
            raise InputError(f"split {name!r} ({s.source}) has no windows (shape {s.contexts.shape}).")
    first = next(iter(splits.values()))
    for name, s in splits.items():
        if (s.k, s.d) != (first.k, first.d):
            raise InputError(
                f"split {name!r} ({s.source}) has K={s.k}, D={s.d}; expected K={first.k}, D={first.d} like the others."
            )
    resolve_cap(n_permutations, 1, 0.05)  # "auto" or a positive integer
    if n_bootstrap < 1:
        raise InputError(f"n_bootstrap must be >= 1; got {n_bootstrap}.")
    if n_folds < 2:
        raise InputError(f"n_folds must be >= 2; got {n_folds}.")
    if max_windows is not None and max_windows < 10:
        raise InputError(f"max_windows must be >= 10 or None; got {max_windows}.")
    ref = reference if reference is not None else ("train" if "train" in splits else next(iter(splits)))
    if ref not in splits:
        raise InputError(f"reference split {ref!r} is not among the inputs {list(splits)}.")
    return dict(splits), ref


def _resolve(splits: dict[str, SequenceSet], groups: Any) -> tuple[list[np.ndarray], str, str]:
    """Article labels per split: from a GroupAssignment-like object, a list of arrays, or the data layer."""
    if groups is None:
        from lvmdiag.data.groups import resolve_groups

        groups = resolve_groups(list(splits.values()))
    if hasattr(groups, "labels"):
        labels, method, note = list(groups.labels), str(groups.method), str(getattr(groups, "note", ""))
    else:
        labels, method, note = list(groups), "given", ""
    if len(labels) != len(splits):
        raise InputError(f"groups has {len(labels)} label arrays for {len(splits)} splits.")
    for (name, s), lab in zip(splits.items(), labels):
        if np.asarray(lab).shape != (s.n,):
            raise InputError(f"group labels for split {name!r} must have shape ({s.n},); got {np.asarray(lab).shape}.")
    return [np.asarray(lab) for lab in labels], method, note


def analyze_direction(
    splits: Mapping[str, SequenceSet] | SequenceSet,
    *,
    groups: Any = None,
    n_permutations: int | str = "auto",
    n_bootstrap: int = 1000,
    n_folds: int = 5,
    ridge: float = 1.0,
    max_windows: int | None = 100_000,
    reference: str | None = None,
    block_rows: int = 8192,
    alpha: float = 0.05,
    rng: np.random.Generator | int | None = 0,
    progress: ProgressCallback | None = None,
) -> DirectionResult:
    """Test whether window order is detectable (arrow of time) and which way each split runs.

    Parameters
    ----------
    splits : one SequenceSet or a dict of split name -> SequenceSet (same K and D)
    groups : optional ``GroupAssignment`` from ``lvmdiag.data.groups.resolve_groups`` over
        ``list(splits.values())`` (or a list of per-split label arrays); resolved here when None
    n_permutations : cap on article flips per test, or "auto" (enough for a lone effect in the
        split's family to reach alpha/m; see :mod:`lvmdiag.stats.sequential`). Each test stops drawing
        once it can no longer reach ``alpha``; p = (b+1)/(B+1) over the flips drawn.
    n_bootstrap : article-bootstrap replicates per confidence interval
    n_folds : folds of whole articles for the classifier's cross-validation
    ridge : classifier shrinkage, lam = ridge * mean Gram diagonal, per feature block
    max_windows : at most this many windows per split feed the classifier (a uniform random sample,
        the same however the data are blocked or sharded; the cost of each permutation is linear in it
        and so is the memory); None = all
    reference : split whose given order defines "forward" (default "train", else the first split)
    block_rows : rows read per block (memory is bounded by the block plus the classifier features)
    alpha : level for the verdict
    rng : seed or generator (folds, subsets, permutations, bootstraps)
    progress : optional ``callback(done, total)``

    Returns
    -------
    DirectionResult
        ``splits`` (per split: ``classifier`` CV AUC test, ``signed`` score vs the reference, ``delta``,
        ``lag_matched``), ``reference``, ``group_method``, ``group_note``, ``alpha``.
    """
    splits, ref = _analyze_direction_iv(splits, n_permutations, n_bootstrap, n_folds, max_windows, reference)
    rng = as_rng(rng)
    labels, method, gnote = _resolve(splits, groups)
    n_tests = 2 * len(splits) - 1
    # one family per split: its classifier and (except the reference) its signed score
    caps = {name: resolve_cap(n_permutations, 1 if name == ref else 2, alpha) for name in splits}
    cap_max = max(caps.values())
    total = sum(s.n for s in splits.values()) + n_tests * cap_max
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(min(done[0], total), total)

    seeds = direction_seeds(rng, list(splits))
    streams = {name: [np.random.default_rng(int(x)) for x in row] for name, row in seeds.items()}
    # the classifier sample's hash salt per split is that split's first seed (see DirectionAccumulator)
    stats = {name: stream_split(s, dense_labels(lab), block_rows, max_windows, int(seeds[name][0]), tick)
             for (name, s), lab in zip(splits.items(), labels)}
    first = next(iter(splits.values()))
    return finalize_direction(stats, streams, ref=ref, k=first.k, d=first.d, method=method, gnote=gnote,
                              n_permutations=n_permutations, n_bootstrap=n_bootstrap, n_folds=n_folds,
                              ridge=ridge, alpha=alpha, tick=tick, done=done)


def direction_seeds(rng: np.random.Generator | int | None, names: list[str]) -> dict[str, np.ndarray]:
    """Five seeds per split (sample salt, CV flips, signed-score flips, Δ bootstrap, lag-matched offsets),
    each split's from a stream named after it, so adding or reordering splits never changes another's draws."""
    root = stream_root(rng)
    return {name: named_stream(root, "direction", name).integers(0, 2**63 - 1, size=5) for name in names}


def finalize_direction(stats: dict[str, Any], streams: dict[str, list[np.random.Generator]], *, ref: str, k: int,
                       d: int, method: str, gnote: str, n_permutations: int | str, n_bootstrap: int, n_folds: int,
                       ridge: float, alpha: float, tick: Callable[[int], None], done: list[int]) -> DirectionResult:
    """The finalize phase of :func:`analyze_direction`: tests and estimates from each split's SplitStats."""
    # one family per split: its classifier and (except the reference) its signed score
    caps = {name: resolve_cap(n_permutations, 1 if name == ref else 2, alpha) for name in stats}
    cap_max = max(caps.values())
    blocks = (d, max(k - 1, 0))  # vector slopes | cosine slopes
    ref_fit = None
    if stats[ref].phi.shape[0] > 0:
        ref_fit = fit_direction(stats[ref].phi, ridge, blocks)
    out = []
    for name, st in stats.items():
        notes = []
        n_cls_groups = int(st.phi_groups.max()) + 1 if st.phi_groups.size else 0
        classifier = None
        try:
            check_enough_articles(n_cls_groups, n_folds, name)
            start = done[0]

            def perm_progress(d: int, t: int, s0: int = start) -> None:
                tick(s0 + d - done[0])

            classifier, _ = cv_direction_test(
                st.phi, st.phi_groups, n_permutations=caps[name], n_folds=n_folds, ridge=ridge,
                rng=streams[name][1], blocks=blocks, progress=perm_progress, alpha=alpha,
                family=f"direction: {name}",
            )
            tick(start + cap_max - done[0])
        except InputError as exc:
            notes.append(str(exc))
        signed = None
        if name != ref and ref_fit is not None and n_cls_groups >= 2:
            signed = signed_direction_test(ref_fit.score(st.phi), st.phi_groups, n_permutations=caps[name],
                                           rng=streams[name][2], alpha=alpha, family=f"direction: {name}")
            tick(cap_max)
        fam_note = floor_note(caps[name], 1 if name == ref else 2, alpha, f"direction tests of {name}")
        if fam_note:
            notes.append(fam_note)
        if st.phi.shape[0] < st.n_used:
            notes.append(f"classifier on a uniform random sample of {st.phi.shape[0]} of {st.n_used} windows.")
        if st.n_used < st.n_windows:
            notes.append(f"{st.n_windows - st.n_used} windows with a zero or non-finite vector excluded.")
        out.append(SplitDirection(
            split=name, n_windows=st.n_windows, n_used=int(st.n_used), n_classifier=int(st.phi.shape[0]),
            n_articles=st.n_groups, classifier=classifier, signed=signed,
            delta=delta_estimate(st, n_bootstrap, streams[name][3]),
            lag_matched=lag_matched_stats(st, k, caps[name], n_bootstrap, streams[name][4]),
            note=" ".join(notes),
        ))
    if method == "contiguous-blocks":
        gnote = (gnote + " Folds, bootstraps and flips use contiguous row blocks in place of articles; "
                 "if blocks cut articles the p-values are only approximate.").strip()
    result = DirectionResult(splits=tuple(out), reference=ref, group_method=method, group_note=gnote, alpha=alpha)
    # BH within each split's family, so the verdict of one split never depends on the others
    return adjust_by_family(result)

"""Is val distributed like train? Two-sample tests between splits that respect articles.

For each split other than "train" (val, ood, ...) and each embedding view (every context chunk;
every target) three tests: the mean shift (norm of the difference of means, and the cosine between
them), an RBF-kernel MMD through random Fourier features, and a linear classifier separating the
splits, cross-validated by article (AUC). On per-window statistics (Δ = cos(c_last, t) - cos(c_0, t),
adjacent coherence, the position profile cos(c_i, t), norms) two-sample KS and Wasserstein-1
distances. Every p-value comes from permuting split labels over whole articles, p = (b+1)/(B+1);
every effect size carries a stratified article-bootstrap interval (the classifier AUC an interval
from the inverted permutation test, which includes the refit); Benjamini-Hochberg adjusts all
p-values of the result together. General drift tools permute rows, which treats overlapping windows
of one article as independent and gives false alarms (see tests/analyzers/test_divergence.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from lvmdiag.analyzers._divergence_markdown import comparison_markdown
from lvmdiag.analyzers.divergence_pass import (
    VIEWS,
    ARTICLE_CAP,
    WINDOW_CAP,
    SplitState,
    accumulate_split,
    bandwidth_sample,
    sample_keys,
)
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import InputError
from lvmdiag.results import ConfidenceInterval, Estimate, Result, TestResult, fmt, fmt_p
from lvmdiag.stats.classifier_test import fit_ridge_folds, fold_factors, held_out_auc
from lvmdiag.stats.group_kfold import assign_folds_in_turn
from lvmdiag.stats.mmd import RandomFourierFeatures, median_bandwidth
from lvmdiag.analyzers.contamination import Contamination, analyze_contamination
from lvmdiag.stats.multiple_testing import adjust_by_family, iter_tests
from lvmdiag.stats.resampling import as_rng, named_stream, stream_root
from lvmdiag.stats.sequential import floor_note, resolve_cap, run_curtailed, test_fields, undecided_note
from lvmdiag._validate import COUNT, check
from lvmdiag.stats.two_sample import (
    SortedValues,
    bootstrap_weights,
    check_units,
    group_mean_distance,
    percentile_ci,
    permutation_lower_bound,
    permutation_weights,
)

_NORM_SPREAD_MIN = 1e-4  # norms all within this of each other: vectors were normalised, norm tests skipped
_PERM_BATCH = 100  # article permutations in the first batch; tests that cannot reach alpha stop between batches
_PERM_BATCH_LATER = 400  # later batches: few and large (each refits the classifiers of every view)


@dataclass(frozen=True)
class ViewDivergence(Result):
    """Tests on one embedding view ("context" chunks or "target" chunks) of one comparison.

    ``chance`` holds the mean of each statistic under article permutation (the value expected with
    no difference: MMD^2 and the mean-shift norm are positive even then, the AUC is about 0.5).
    """

    view: str
    n_rows: tuple[int, int]  # (reference, other)
    mean_cosine: Estimate
    mean_shift: TestResult
    mmd: TestResult
    classifier: TestResult
    chance: dict[str, float]

    def tests(self) -> list[TestResult]:
        return [self.mean_shift, self.mmd, self.classifier]


@dataclass(frozen=True)
class StatisticDivergence(Result):
    """KS and Wasserstein-1 tests on one per-window statistic, with histograms for the plot."""

    statistic: str
    mean: tuple[float, float]  # (reference, other)
    ks: TestResult
    wasserstein: TestResult
    chance: dict[str, float]
    edges: tuple[float, ...]
    counts: tuple[tuple[int, ...], tuple[int, ...]]

    def tests(self) -> list[TestResult]:
        return [self.ks, self.wasserstein]


@dataclass(frozen=True)
class SplitComparison(Result):
    """All tests of one split against the reference split."""

    reference: str
    other: str
    n_windows: tuple[int, int]
    n_units: tuple[int, int]
    views: tuple[ViewDivergence, ...]
    statistics: tuple[StatisticDivergence, ...]
    profile: TestResult  # mean-vector test on the position profile cos(c_i, t)
    profile_chance: float
    profile_means: tuple[tuple[float, ...], tuple[float, ...]]
    notes: tuple[str, ...]
    contamination: Contamination | None = None  # article-level: which articles look foreign (own family)

    def tests(self) -> list[TestResult]:
        return iter_tests(self)

    def pooled_tests(self) -> list[TestResult]:
        """The two-sample tests of the comparison's family (the contamination test is its own family)."""
        return [t for t in self.tests() if t.family.startswith("divergence")]


@dataclass(frozen=True)
class DivergenceResult(Result):
    """Divergence of every split from the reference split ("train").

    Attributes
    ----------
    comparisons : one :class:`SplitComparison` per other split
    grouping : how windows were grouped into articles (``GroupAssignment.method``) and its note
    n_permutations, n_bootstrap : whole-article permutations per test / bootstrap replicates per CI
    rff_features : random Fourier features approximating the RBF kernel
    bandwidths : RBF bandwidth sigma per view (median pairwise distance)
    bandwidth_sample : rows in the median-heuristic subsample (per view)
    n_folds, ridge : classifier cross-validation folds (by article) and relative ridge penalty
    alpha : level used for findings
    notes : approximations and subsamples stated for the reader
    warnings : what limits the reading of the tests (e.g. articles shared between splits), shown first
    """

    comparisons: tuple[SplitComparison, ...]
    grouping: str
    n_permutations: int
    n_bootstrap: int
    rff_features: int
    bandwidths: dict[str, float]
    bandwidth_sample: int
    n_folds: int
    ridge: float
    alpha: float
    notes: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    def tests(self) -> list[TestResult]:
        """Every test of the result, in field order (the order BH adjustments are assigned in)."""
        return iter_tests(self)

    def pooled_tests(self) -> list[TestResult]:
        """Every pooled two-sample test (each comparison's divergence family), without contamination."""
        return [t for c in self.comparisons for t in c.pooled_tests()]

    def findings(self, alpha: float | None = None) -> list[str]:
        """One line per test significant after BH within its family (one family per compared split)."""
        a = self.alpha if alpha is None else alpha
        lines = []
        for t in self.tests():
            if t.status(a) == "significant":
                lines.append(f"{t.name}: effect {t.evidence(a)}")
        for c in self.comparisons:
            if c.contamination is not None and c.contamination.flagged:
                named = ", ".join(f"{x.article} ({x.n_windows} windows)" for x in c.contamination.flagged[:10])
                more = f" and {len(c.contamination.flagged) - 10} more" if len(c.contamination.flagged) > 10 else ""
                lines.append(f"{c.other} articles that look foreign to {c.reference} (FDR {a:g}): {named}{more}")
        return lines

    def nominal(self, alpha: float | None = None) -> list[TestResult]:
        """Tests whose interval or raw p shows a difference that the family correction does not confirm."""
        a = self.alpha if alpha is None else alpha
        return [t for t in self.tests() if t.status(a) == "nominal"]

    def to_markdown(self) -> str:
        lines = ["## Split divergence", ""]
        found = [t for t in self.pooled_tests() if t.status(self.alpha) == "significant"]
        if found:
            lines.append(f"**Verdict: the splits differ** ({len(found)} of {len(self.pooled_tests())} tests significant "
                         f"at BH-adjusted α = {self.alpha}).")
        elif undecided := undecided_note(self.pooled_tests(), self.alpha):
            lines.append(f"**Verdict: {undecided}** (0 of {len(self.pooled_tests())} tests significant at "
                         f"BH-adjusted α = {self.alpha}).")
        else:
            lines.append(f"**Verdict: no difference between splits after correction** (0 of {len(self.pooled_tests())} "
                         f"tests significant at BH-adjusted α = {self.alpha}).")
        nominal = self.nominal()
        if nominal:
            lines.append("")
            lines.append(f"Not significant after correction, but the interval excludes chance or p ≤ {self.alpha} "
                         "before correction: " + "; ".join(f"{t.name} {t.evidence(self.alpha)}" for t in nominal) + ".")
        for c in self.comparisons:
            if c.contamination is not None:
                lines += ["", c.contamination.to_markdown().rstrip()]
        lines += [
            "",
            f"Grouping: {self.grouping.rstrip('.')}. p-values: permutations of whole articles, p = (b+1)/(B+1) over "
            f"the B drawn (cap {self.n_permutations}: a test stops drawing once it cannot reach α, see each test's "
            "resamples in the JSON); one Benjamini–Hochberg family per compared split; intervals: 95% stratified "
            f"article bootstrap ({self.n_bootstrap} replicates; "
            "the classifier AUC has a one-sided lower bound inverting the permutation test, see the method notes); "
            "'Chance' is the statistic's mean under permutation "
            "(what no difference looks like).",
            "",
        ]
        for w in self.warnings:
            lines += [f"**{w}**", ""]
        for c in self.comparisons:
            lines += comparison_markdown(c)
        if self.notes:
            lines += ["**Method notes**", ""] + [f"- {n}" for n in self.notes] + [""]
        return "\n".join(lines)


def _divergence_iv(splits: dict[str, SequenceSet], reference: str, n_permutations: int | str,
                   n_bootstrap: int) -> None:
    if not isinstance(splits, dict) or not splits:
        raise TypeError("splits must be a non-empty dict {name: SequenceSet}.")
    if reference not in splits:
        raise InputError(f"divergence compares every split to {reference!r}; got splits {sorted(splits)}.")
    if len(splits) < 2:
        raise InputError("divergence needs at least two splits (e.g. --train and --val).")
    ref = splits[reference]
    for name, ss in splits.items():
        if not isinstance(ss, SequenceSet):
            raise TypeError(f"splits[{name!r}] must be a SequenceSet; got {type(ss).__name__}.")
        if ss.d != ref.d or ss.k != ref.k:
            raise InputError(
                f"split {name!r} ({ss.source}) has K={ss.k}, D={ss.d} but {reference!r} has K={ref.k}, D={ref.d}; "
                "compare files from the same encoder and window length."
            )
    resolve_cap(n_permutations, 1, 0.05)  # "auto" or a positive integer
    if n_bootstrap < 1:
        raise InputError(f"n_bootstrap must be >= 1; got {n_bootstrap}.")


def _resolve_labels(splits: list[SequenceSet], groups: Any) -> tuple[list[np.ndarray], str]:
    """Article label per window of every split (codes consistent across splits) and a description."""
    if groups is None:
        from lvmdiag.data.groups import resolve_groups

        groups = resolve_groups(splits)
    if hasattr(groups, "labels"):
        labels = [np.asarray(x) for x in groups.labels]
        desc = f"{groups.method} ({groups.n_groups} groups)"
        if getattr(groups, "note", ""):
            desc += f"; {groups.note}"
    else:
        labels = [np.asarray(x) for x in groups]
        desc = "caller-supplied groups"
    if len(labels) != len(splits) or any(lab.shape != (s.n,) for lab, s in zip(labels, splits)):
        raise InputError("groups must give one label per window of every split, in the order of `splits`.")
    return labels, desc


def _article_namer(splits: list[SequenceSet], labels: list[np.ndarray]) -> Callable[[int], str]:
    """Readable name of an article code: its id from the files, else its first window's row."""
    names: dict[int, str] = {}
    for ss, lab in zip(splits, labels):
        lab = np.asarray(lab)
        codes, first = np.unique(lab, return_index=True)
        ids = getattr(ss, "article_ids", None)  # engine sources (shards) may carry no ids or attrs
        attrs = getattr(ss, "attrs", None) or {}
        where = getattr(ss, "split", None) or getattr(ss, "source", "split")
        for c, r in zip(codes.tolist(), first.tolist()):
            if c in names:
                continue
            if ids is not None and getattr(ss, "id_source", "") == "given":
                aid = ids[r]
                title = (attrs.get("article_names") or {}).get(int(aid))
                names[c] = f"article {aid}" + (f" ({title})" if title else "")
            else:
                names[c] = f"group {c} ({where} row {r})"
    return lambda code: names.get(int(code), f"group {code}")


def _ci_estimate(value: float, replicates: np.ndarray, method: str, distance: bool = False) -> Estimate:
    """Estimate with a percentile interval; distances get the bias-shifted interval (see ``percentile_ci``)."""
    if distance:
        return Estimate(float(value), percentile_ci(replicates, center=float(value)), method + ", bias-shifted percentile")
    return Estimate(float(value), percentile_ci(replicates), method + ", percentile")


def _cosine_estimate(value: float, replicates: np.ndarray) -> Estimate:
    """cos(mean a, mean b) with a bias-shifted percentile interval clipped to [-1, 1].

    Resampling noise pulls the two bootstrap means apart, so replicates of the cosine are biased
    downward; the plain percentile interval then often lies entirely below the estimate (seen on
    real data: 0.882 [0.716, 0.868]). Shifting by the bootstrap bias estimate, as for the
    distances, removes that first-order bias.
    """
    r = np.asarray(replicates, dtype=float)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return Estimate(value, ConfidenceInterval(float("nan"), float("nan"), 0.95), "article bootstrap")
    shift = value - float(r.mean())
    lo, hi = np.quantile(r, [0.025, 0.975]) + shift
    ci = ConfidenceInterval(float(np.clip(lo, -1.0, 1.0)), float(np.clip(hi, -1.0, 1.0)), 0.95)
    return Estimate(value, ci, "article bootstrap, bias-shifted percentile")


def analyze_divergence(
    splits: dict[str, SequenceSet],
    *,
    groups: Any = None,
    reference: str = "train",
    n_permutations: int | str = "auto",
    n_bootstrap: int = 200,
    rff_features: int = 512,
    bandwidth_subsample: int = 1000,
    n_folds: int = 5,
    ridge: float = 1e-2,
    alpha: float = 0.05,
    block_rows: int = 2048,
    rng: np.random.Generator | int | None = 0,
    progress: Callable[[int, int], None] | None = None,
    window_cap: int | None = WINDOW_CAP,
    article_cap: int | None = ARTICLE_CAP,
) -> DivergenceResult:
    """Test whether each split is distributed like the reference split, permuting whole articles.

    Parameters
    ----------
    splits : {name: SequenceSet}; must contain ``reference``; every other split is compared to it
    groups : article labels: a ``GroupAssignment`` (``labels`` list), a list of (N_s,) arrays in the
        order of ``splits``, or None to call :func:`lvmdiag.data.groups.resolve_groups`. Passing one
        distinct label per window gives the iid-row version of every test (anti-conservative).
    n_permutations : cap on whole-article permutations per test, or "auto" (enough for a lone effect in
        the comparison's family to reach alpha/m); the same permutations serve every test of a
        comparison, and each test stops drawing once it cannot reach ``alpha`` (lvmdiag.stats.sequential)
    n_bootstrap : stratified article-bootstrap replicates per confidence interval
    rff_features : random Fourier features approximating the RBF kernel of the MMD
    bandwidth_subsample : rows in the median-heuristic subsample (an m x m distance matrix)
    n_folds : classifier folds, whole articles per fold
    ridge : classifier ridge penalty relative to the mean diagonal of the training Gram matrix XᵀX
    alpha : level of the findings (on BH-adjusted p-values)
    block_rows : windows read at a time (memory bound)
    window_cap : per-window values (KS/Wasserstein) kept per split; a larger split keeps the windows of a
        cap / n share of its articles, sampled by a hash of the article code (None: every window)
    article_cap : articles per split in the divergence state (each holds ~20 kB of float64 sums at
        768-d); a split with more enters every test through a hash sample of this many articles (None: all)
    rng : seed or generator
    progress : optional callback ``(done, total)`` in rows processed

    Returns
    -------
    DivergenceResult with one SplitComparison per non-reference split; every TestResult carries
    ``pvalue_adjusted`` (Benjamini-Hochberg across all tests of the result).
    """
    _divergence_iv(splits, reference, n_permutations, n_bootstrap)
    check("block_rows", block_rows, COUNT)
    rng = as_rng(rng)
    names = [reference] + [n for n in splits if n != reference]
    ordered = [splits[n] for n in names]
    labels, grouping = _resolve_labels(ordered, groups)
    fold_of_article, split_codes, features, bandwidths, m_used, root = plan_divergence(
        ordered, names, labels, n_folds, rff_features, bandwidth_subsample, rng)

    total = sum(s.n for s in ordered)
    done = [0]

    def tick(rows: int) -> None:
        done[0] += rows
        if progress is not None:
            progress(min(done[0], total), total)

    states = []
    for s, n, c in zip(ordered, names, split_codes):
        a_rate, w_rate = sample_rates(s.n, int(np.unique(c).size), window_cap, article_cap)
        states.append(accumulate_split(s, n, c, fold_of_article, features, n_folds, block_rows, tick,
                                       sample_rate=w_rate, article_rate=a_rate,
                                       sample_key=sample_keys(c, fold_of_article.size)))
    return finalize_divergence(states, ordered, names, split_codes, fold_of_article, bandwidths, m_used, grouping,
                               n_permutations=n_permutations, n_bootstrap=n_bootstrap, rff_features=rff_features,
                               n_folds=n_folds, ridge=ridge, alpha=alpha, root=root)


def sample_rates(n_windows: int, n_articles: int, window_cap: int | None, article_cap: int | None
                 ) -> tuple[float, float]:
    """(article rate, window rate) of one split: the share of its articles in the divergence state (all up
    to ``article_cap``), and the share of those whose per-window values are kept (all up to ``window_cap``)."""
    a = 1.0 if article_cap is None or n_articles <= article_cap else article_cap / n_articles
    w = 1.0 if window_cap is None or n_windows * a <= window_cap else window_cap / (n_windows * a)
    return a, w


def plan_divergence(ordered: list[SequenceSet], names: list[str], labels: list[np.ndarray], n_folds: int,
                    rff_features: int, bandwidth_subsample: int, rng: np.random.Generator | int | None):
    """Everything fixed before the pass: article folds, each split's codes, and the random features per view.

    Reads ``bandwidth_subsample`` random rows of the reference split (not a pass) for the median-heuristic
    bandwidth. Every random draw comes from a stream named after its purpose and split
    (:func:`lvmdiag.stats.resampling.named_stream`), and the kernel is set on the reference split (as drift
    detectors set it), so adding a split (an ood file) never changes another split's folds, kernel or tests.
    Returns (fold_of_article, split_codes, features, bandwidths, m_used, root), ``root`` seeding finalize.
    """
    root = stream_root(rng)
    # dense article codes shared by all splits (an article in two splits is one article for the folds)
    _, codes = np.unique(np.concatenate(labels), return_inverse=True)
    codes = codes.ravel()
    split_codes = np.split(codes, np.cumsum([s.n for s in ordered])[:-1])
    fold_of_article = assign_folds_in_turn(split_codes, int(codes.max()) + 1 if codes.size else 0, n_folds,
                                           [named_stream(root, "folds", n) for n in names])
    ref_articles = np.unique(split_codes[0])
    for name, c in zip(names[1:], split_codes[1:]):  # every comparison needs articles in every fold
        articles = np.union1d(ref_articles, c)
        if articles.size < n_folds:
            raise InputError(f"cross-validation by article needs at least {n_folds} articles (groups); {names[0]} "
                             f"and {name} hold {articles.size}. Provide article ids or use fewer folds.")
        used = np.unique(fold_of_article[articles]).size  # articles shared with an earlier split keep its folds
        if used < n_folds:
            raise InputError(f"cross-validation by article of {name} against {names[0]} finds articles in only "
                             f"{used} of {n_folds} folds ({names[0]} has {ref_articles.size} articles; {name}'s "
                             "other articles share ids with an earlier split). Give the reference split more "
                             "articles or use fewer folds.")

    features, bandwidths, m_used = {}, {}, 0
    for v in VIEWS:
        sample = bandwidth_sample(ordered[:1], v, bandwidth_subsample, named_stream(root, "bandwidth", v))
        if sample.shape[0] < 2:
            raise InputError(f"fewer than 2 non-zero {v} vectors in {names[0]}; nothing to compare against.")
        m_used = sample.shape[0]
        bandwidths[v] = median_bandwidth(sample)
        features[v] = RandomFourierFeatures.create(ordered[0].d, rff_features, bandwidths[v],
                                                   named_stream(root, "features", v))

    return fold_of_article, split_codes, features, bandwidths, m_used, root


def finalize_divergence(states: list[SplitState], ordered: list[Any], names: list[str], split_codes: list[np.ndarray],
                        fold_of_article: np.ndarray, bandwidths: dict[str, float], m_used: int, grouping: str, *,
                        n_permutations: int | str, n_bootstrap: int, rff_features: int, n_folds: int, ridge: float,
                        alpha: float, root: int) -> DivergenceResult:
    """The finalize phase of :func:`analyze_divergence` from merged per-split states (reference first).

    Every test uses the states alone (``ordered`` supplies article names and chunk texts, not rows). Each
    comparison draws from its own stream of ``root`` (:func:`plan_divergence`), so it does not depend on
    which other splits are compared.
    """
    reference = names[0]
    names_of = _article_namer(ordered, split_codes)
    comparisons = []
    for other_state, other_ss in zip(states[1:], ordered[1:]):
        comparisons.append(
            _compare(states[0], ordered[0], other_state, other_ss, fold_of_article, n_permutations, n_bootstrap,
                     ridge, named_stream(root, "compare", other_state.name), alpha, names_of)
        )
    shared_notes = []
    ref_articles = set(np.unique(split_codes[0]).tolist())
    for name, c in zip(names[1:], split_codes[1:]):
        arts = np.unique(c)
        n_shared = sum(1 for a in arts.tolist() if a in ref_articles)
        if n_shared:  # (article, split) pairs are the permuted units; say what shared articles do to the tests
            shared_notes.append(
                f"{n_shared} of {arts.size} {name} article ids also occur in {reference}: the same articles in both "
                f"splits (leakage; the leakage check says whether their content is shared) or ids numbered per file. "
                f"Each (article, split) pair is permuted as one unit; where they are the same articles, their windows "
                f"on both sides make the splits look alike, so these tests are conservative (large p-values do not "
                "show that the splits match).")
    notes = (
        f"MMD uses {rff_features} random Fourier features of the RBF kernel, bandwidth σ = median pairwise "
        f"distance of a {m_used}-row subsample of {reference} per view (set on the reference, so adding a split "
        "changes no other comparison; σ: "
        + ", ".join(f"{v} {fmt(b)}" for v, b in bandwidths.items())
        + "). The MMD² is the biased V-statistic of the approximate kernel (no subsample: every row enters); its kernel "
        f"entries differ from the exact RBF by ≈ {1 / np.sqrt(rff_features):.3f} (1/√D) typically, which changes the "
        "power slightly, never the false-positive rate (the permutation test is exact for the kernel it uses).",
        f"Classifier: ridge least squares (penalty {ridge} × mean diagonal of XᵀX, intercept free) = LDA direction, "
        f"{n_folds}-fold cross-validation with whole articles per fold; binormal AUC Φ(d/√2) of the pooled "
        "out-of-fold scores (d: their exact standardised mean difference, computed from per-article sums and "
        "per-fold Gram matrices, so the rows are read once). "
        f"Its interval is a one-sided {100 * (1 - alpha):g}% lower bound that inverts the one-sided article-permutation "
        "test (the AUC minus the permutation null's upper spread around chance; every permutation refits the "
        f"classifier), so it exceeds chance exactly when that test's p ≤ {alpha:g}; an AUC below chance is no "
        "evidence of anything.",
        "Per-window statistics use exact empirical distributions (all values, no histogram).",
        "'context' rows are every context chunk of every window (each chunk counted once per window it appears in).",
    )
    result = DivergenceResult(
        comparisons=tuple(comparisons),
        grouping=grouping,
        n_permutations=max(resolve_cap(n_permutations, len(c.pooled_tests()), alpha) for c in comparisons),
        n_bootstrap=n_bootstrap,
        rff_features=rff_features,
        bandwidths=bandwidths,
        bandwidth_sample=m_used,
        n_folds=n_folds,
        ridge=ridge,
        alpha=alpha,
        notes=notes,
        warnings=tuple(shared_notes),
    )
    # BH within each compared split's family: adding an ood split never changes val's verdicts
    return adjust_by_family(result)


def _compare(
    ref: SplitState,
    ref_ss: SequenceSet,
    oth: SplitState,
    oth_ss: SequenceSet,
    fold_of_article: np.ndarray,
    n_perm: int | str,
    n_boot: int,
    ridge: float,
    rng: np.random.Generator,
    alpha: float = 0.05,
    article_names: Callable[[int], str] | None = None,
) -> SplitComparison:
    """All tests of ``oth`` (sample a) against ``ref`` (sample b) over the units of both.

    The tests form one family ("divergence: oth vs ref") and share article permutations, drawn in
    batches up to the family's cap; each test stops once it can no longer reach ``alpha``
    (:mod:`lvmdiag.stats.sequential`).
    """
    in_a = np.r_[np.zeros(ref.n_units, bool), np.ones(oth.n_units, bool)]
    check_units(in_a, f"comparison of {oth.name} with {ref.name}")
    wa0, wb0 = in_a[None, :].astype(float), (~in_a)[None, :].astype(float)
    boot_a, boot_b = bootstrap_weights(in_a, n_boot, rng)
    unit_fold = fold_of_article[np.r_[ref.unit_article, oth.unit_article]]
    tag = f"{oth.name} vs {ref.name}"
    family = f"divergence: {tag}"
    notes: list[str] = []

    # every statistic: observed value (on the scale the test compares) and a function of a permutation batch
    stats: list[dict] = []

    def add(name: str, observed: float, null_fn: Callable[[np.ndarray], np.ndarray], **extra) -> int:
        stats.append(dict(name=name, observed=float(observed), null_fn=null_fn, **extra))
        return len(stats) - 1

    view_parts = []
    for v in VIEWS:
        rs, os_ = ref.views[v], oth.views[v]
        counts = np.r_[rs.counts, os_.counts]
        raw = np.vstack([rs.raw, os_.raw])
        rff = np.vstack([rs.rff, os_.rff])
        obs_raw = group_mean_distance(wa0, wb0, raw, counts)
        boot_raw = group_mean_distance(boot_a, boot_b, raw, counts)
        obs_rff = group_mean_distance(wa0, wb0, rff, counts)
        boot_rff = group_mean_distance(boot_a, boot_b, rff, counts)
        i_shift = add(f"{tag} {v} mean shift", obs_raw.sq_distance[0],
                      lambda perm, s_=raw, c_=counts: group_mean_distance(perm, 1.0 - perm, s_, c_).sq_distance)
        i_mmd = add(f"{tag} {v} MMD²", obs_rff.sq_distance[0],
                    lambda perm, s_=rff, c_=counts: group_mean_distance(perm, 1.0 - perm, s_, c_).sq_distance)
        clf = _ClassifierNull(ref, oth, v, raw, counts, unit_fold, in_a, ridge)
        i_clf = add(f"{tag} {v} classifier AUC", clf.observed, clf)
        view_parts.append((v, rs, os_, obs_raw, boot_raw, obs_rff, boot_rff, i_shift, i_mmd, i_clf))

    # per-window statistics: units of the rows, reference units first
    row_unit = np.r_[ref.unit_of_row, oth.unit_of_row + ref.n_units]
    for st in (ref, oth):
        if st.article_rate < 1.0:
            notes.append(f"{st.name}: every divergence test uses a hash sample of whole articles (rate "
                         f"{st.article_rate:.3g}: {st.n_units:,} articles, {st.n_used:,} windows; {st.n_outside:,} "
                         "windows of other articles left out) to bound memory (article_cap).")
        if st.sample_rate < 1.0:
            notes.append(f"KS/Wasserstein of per-window statistics on {st.n_sampled:,} of {st.n_used:,} {st.name} "
                         f"windows: whole articles sampled at rate {st.sample_rate:.3g} by a hash of the article "
                         "(bounded memory); every other test uses every window.")
    ecdf_parts = []
    for name in ref.per_window:
        values = np.r_[ref.per_window[name], oth.per_window[name]]
        if name.endswith("norm") and values.size and np.ptp(values) < _NORM_SPREAD_MIN:
            notes.append(f"{name.replace('_', ' ')}s all lie within {_NORM_SPREAD_MIN:g} of {fmt(values.mean())} "
                         "(normalised vectors): KS/Wasserstein on norms skipped.")
            continue
        finite = np.isfinite(values)
        sv = SortedValues(values[finite], row_unit[finite])
        obs = sv.distances(wa0, wb0)
        cache: dict = {}

        def ecdf_null(perm: np.ndarray, which: str, sv_: SortedValues = sv, cache_: dict = cache) -> np.ndarray:
            if cache_.get("perm") is not perm:  # KS and Wasserstein share one pass over the batch
                cache_["perm"], cache_["d"] = perm, sv_.distances(perm, 1.0 - perm)
            return getattr(cache_["d"], which)

        i_ks = add(f"{tag} {name} KS", obs.ks[0], lambda perm, f=ecdf_null: f(perm, "ks"))
        i_w = add(f"{tag} {name} Wasserstein", obs.wasserstein[0], lambda perm, f=ecdf_null: f(perm, "wasserstein"))
        ecdf_parts.append((name, values, finite, sv, obs, i_ks, i_w))

    prof_sums = np.vstack([ref.prof_sums, oth.prof_sums])  # every used window, not only the sampled ones
    prof_counts = np.r_[ref.views["target"].counts, oth.views["target"].counts]
    obs_prof = group_mean_distance(wa0, wb0, prof_sums, prof_counts)
    boot_prof = group_mean_distance(boot_a, boot_b, prof_sums, prof_counts)
    i_prof = add(f"{tag} position profile", obs_prof.sq_distance[0],
                 lambda perm: group_mean_distance(perm, 1.0 - perm, prof_sums, prof_counts).sq_distance)

    cap = resolve_cap(n_perm, len(stats), alpha)
    fam_note = floor_note(cap, len(stats), alpha, f"divergence tests of {tag}")
    if fam_note:
        notes.append(fam_note)

    def draw(b: int, active: np.ndarray) -> np.ndarray:
        perm = permutation_weights(in_a, b, rng)
        out = np.full((b, len(stats)), np.nan)
        for j, st in enumerate(stats):
            if active[j]:
                out[:, j] = st["null_fn"](perm)
        return out

    tests, nulls = run_curtailed(np.array([st["observed"] for st in stats]), draw, cap, alpha, "greater",
                                 batch=_PERM_BATCH, later_batch=_PERM_BATCH_LATER)

    def null_of(j: int) -> np.ndarray:
        col = nulls[:, j]
        return col[np.isfinite(col)]

    def mean_test(j: int, obs_sq: float, boot_sq: np.ndarray, what: str, sqrt: bool) -> tuple[TestResult, float]:
        tr = np.sqrt if sqrt else (lambda x: x)
        null = null_of(j)
        chance = float(np.mean(tr(null))) if null.size else float("nan")
        test = TestResult(stats[j]["name"], float(tr(obs_sq)),
                          effect=_ci_estimate(tr(obs_sq), tr(boot_sq), "article bootstrap", True), method=what,
                          family=family, **test_fields(tests.result(j)))  # a distance's CI has no null value
        return test, chance

    views = []
    for v, rs, os_, obs_raw, boot_raw, obs_rff, boot_rff, i_shift, i_mmd, i_clf in view_parts:
        shift, chance_shift = mean_test(i_shift, obs_raw.sq_distance[0], boot_raw.sq_distance,
                                        "‖mean difference‖, article permutation", True)
        mean_cos = _cosine_estimate(float(obs_raw.cosine[0]), boot_raw.cosine)
        mmd, chance_mmd = mean_test(i_mmd, obs_rff.sq_distance[0], boot_rff.sq_distance,
                                    "RBF MMD² (random Fourier features), article permutation", False)
        clf_null = null_of(i_clf)
        # The interval inverts the article permutation test around the null's mean (the "chance" column:
        # a cross-validated AUC sits below 0.5 when there is nothing to learn). Every permutation refits the
        # classifier, so the width includes the fit's variability. A percentile bootstrap of the fixed
        # out-of-fold scores ignored it: on 200 null splits (articles assigned at random) that interval
        # excluded 0.5 in 25% of them while the p-value was calibrated (5%).
        chance_auc = float(clf_null.mean()) if clf_null.size else float("nan")
        auc = stats[i_clf]["observed"]
        # one-sided, as the test ("greater"), at the test's level: the bound exceeds chance exactly when p <= alpha
        ci = permutation_lower_bound(auc, clf_null, chance_auc, 1.0 - alpha, (0.0, 1.0))
        clf = TestResult(stats[i_clf]["name"], auc,
                         effect=Estimate(auc, ci, f"one-sided {100 * (1 - alpha):g}% lower bound inverting the "
                                                  "article-permutation test (refit per permutation; upper end 1)"),
                         method="linear classifier, binormal AUC of out-of-fold scores, CV by article, article permutation",
                         family=family, null_value=chance_auc, **test_fields(tests.result(i_clf)))
        views.append(ViewDivergence(v, (int(rs.counts.sum()), int(os_.counts.sum())), mean_cos, shift, mmd, clf,
                                    {"mean_shift": chance_shift, "mmd": chance_mmd, "classifier": chance_auc}))

    stat_results = [
        _ecdf_result(name, values, finite, sv, obs, ref, oth, boot_a, boot_b, tag, family,
                     (tests.result(i_ks), null_of(i_ks)), (tests.result(i_w), null_of(i_w)))
        for name, values, finite, sv, obs, i_ks, i_w in ecdf_parts
    ]
    profile, profile_chance = mean_test(i_prof, obs_prof.sq_distance[0], boot_prof.sq_distance,
                                        "‖difference of mean cos(c_i,t) profiles‖, article permutation", True)
    contamination = None
    try:
        contamination = analyze_contamination(
            ref.views["target"].raw, ref.views["target"].counts, oth.views["target"].raw, oth.views["target"].counts,
            [article_names(int(a)) if article_names else str(int(a)) for a in oth.unit_article],
            split=oth.name, reference=ref.name, n_permutations=resolve_cap(n_perm, 1, alpha), alpha=alpha,
            rng=rng, family=f"contamination: {tag}", other_texts=_first_texts(oth_ss, oth))
    except InputError as exc:
        notes.append(f"Article-level contamination not tested: {exc}")
    return SplitComparison(
        reference=ref.name,
        other=oth.name,
        n_windows=(ref.n_used, oth.n_used),
        n_units=(ref.n_units, oth.n_units),
        views=tuple(views),
        statistics=tuple(stat_results),
        profile=profile,
        profile_chance=profile_chance,
        profile_means=(tuple((ref.prof_sums.sum(0) / max(ref.n_used, 1)).tolist()),
                       tuple((oth.prof_sums.sum(0) / max(oth.n_used, 1)).tolist())),
        notes=tuple(notes),
        contamination=contamination,
    )


def _first_texts(ss: Any, state: SplitState) -> list[str | None] | None:
    """Text of the first chunk of each unit of a split, when a texts file sits beside its store."""
    from lvmdiag.data.texts import window_text

    if state.n_used == 0:
        return None
    none = np.iinfo(np.int64).max
    texts = [window_text(ss, int(r), 0) if r != none else None for r in state.first_row]
    return texts if any(texts) else None


def _ecdf_result(name, values, finite, sv, obs, ref, oth, boot_a, boot_b, tag, family, ks_mc, w_mc
                 ) -> StatisticDivergence:
    """KS and Wasserstein-1 test results of one per-window statistic, with histograms for the plot."""
    boot = sv.distances(boot_a, boot_b)
    (ks_p, ks_null), (w_p, w_null) = ks_mc, w_mc
    ks_chance = float(ks_null.mean()) if ks_null.size else float("nan")
    w_chance = float(w_null.mean()) if w_null.size else float("nan")
    ks = TestResult(f"{tag} {name} KS", float(obs.ks[0]),
                    effect=_ci_estimate(obs.ks[0], boot.ks, "article bootstrap", True),
                    method="KS D, article permutation", family=family, **test_fields(ks_p))
    w1 = TestResult(f"{tag} {name} Wasserstein", float(obs.wasserstein[0]),
                    effect=_ci_estimate(obs.wasserstein[0], boot.wasserstein, "article bootstrap", True),
                    method="Wasserstein-1, article permutation", family=family, **test_fields(w_p))
    a_vals = ref.per_window[name][np.isfinite(ref.per_window[name])]
    b_vals = oth.per_window[name][np.isfinite(oth.per_window[name])]
    lo, hi = np.quantile(values[finite], [0.005, 0.995]) if finite.any() else (0.0, 1.0)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, 41)
    counts = (tuple(np.histogram(np.clip(a_vals, lo, hi), edges)[0].tolist()),
              tuple(np.histogram(np.clip(b_vals, lo, hi), edges)[0].tolist()))
    return StatisticDivergence(name, (float(a_vals.mean()) if a_vals.size else float("nan"),
                                      float(b_vals.mean()) if b_vals.size else float("nan")),
                               ks, w1, {"ks": ks_chance, "wasserstein": w_chance},
                               tuple(edges.tolist()), counts)


class _ClassifierNull:
    """Ridge/LDA classifier CV by article: the observed held-out AUC, and that of permuted labels per batch.

    Computed from the merged sums alone, with no re-read of the rows. For label column c and fold f the
    weights are w_fc (:func:`fit_ridge_folds`); unit u's held-out score sum is S_u·w_{f(u)c}, so the mean
    held-out score of each sample is exact, and so is the sum of squared held-out scores, Σ_f w_fcᵀ G_f w_fc
    with G_f the fold's own Gram matrix. The law of total variance then gives the pooled within-sample
    variance, hence Cohen's d of the held-out scores, exactly; the statistic is the binormal AUC Φ(d/√2)
    (equal to the rank AUC when the scores of each sample are normal with a common variance; the test is a
    permutation test of d either way, so it is exact whatever the scores' shape).
    """

    def __init__(self, ref, oth, view, raw, counts, unit_fold, in_a, ridge):
        self.raw, self.counts, self.unit_fold, self.ridge = raw, counts, unit_fold, ridge
        self.grams = ref.views[view].grams.gram + oth.views[view].grams.gram
        self.factors = fold_factors(self.grams, ridge)  # label-free: one factorisation for every batch
        self.sums_aug = np.hstack([np.asarray(raw, np.float64), np.asarray(counts, np.float64)[:, None]])
        self.observed = float(self._aucs(in_a[:, None].astype(float) * 2.0 - 1.0)[0])

    def __call__(self, perm: np.ndarray) -> np.ndarray:
        return self._aucs(perm.T * 2.0 - 1.0)

    def _aucs(self, labels: np.ndarray) -> np.ndarray:
        """Binormal held-out AUC of each label column (U, C) of +-1."""
        model = fit_ridge_folds(self.grams, self.raw, self.counts, self.unit_fold, labels, self.ridge,
                                factors=self.factors)
        return held_out_auc(model.weights, self.grams, self.sums_aug, self.counts, self.unit_fold, labels > 0)

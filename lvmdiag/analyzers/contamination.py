"""Which articles of a split look foreign to the reference split? Conformal p-values per article.

Pooled two-sample tests (mean shift, MMD, a classifier) average over all windows, so a few whole
articles from another corpus (5% of val's windows) barely move them. This test works on articles:

1. Score each article by how far its mean chunk vector lies from the reference articles' centroid:
   s = 1 - cos(mean of the article's target vectors, centroid of the reference article means).
   A reference article is scored against the centroid of the *other* reference articles
   (leave-one-out), so its score is a held-out score, like a val article's.
2. Conformal p-value of each article of the split (Bates et al., "Testing for outliers with
   conformal p-values", Ann. Statist. 2023): p_j = (1 + #{reference scores >= s_j}) / (n_ref + 1).
   Under "article j is drawn like the reference articles" p_j is (super-)uniform. Benjamini-Hochberg
   across the split's articles names the foreign-looking ones with the false discovery rate
   controlled at alpha (conformal p-values sharing one calibration set are PRDS, Bates et al. Thm 2).
3. One global test: the share of the split's articles scoring above the (1 - q) quantile of the
   reference scores (q = 1%), against its whole-article permutation null (articles relabelled
   between the split and the reference, the quantile recomputed each time), with the permutation
   interval of that share. "The split holds more foreign-looking articles than chance."

Every quantity comes from per-article sums (O(articles x D) memory, mergeable), never from rows.
Scores use one centroid, so they catch articles off the reference's centre of mass (another corpus,
another encoder, boilerplate); an article that sits inside the reference's spread but in an empty
region is not what this test looks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from lvmdiag.data.texts import one_line
from lvmdiag.errors import InputError
from lvmdiag.results import Estimate, Result, TestResult, fmt, fmt_p, md_table
from lvmdiag.stats.resampling import as_rng, benjamini_hochberg
from lvmdiag.stats.sequential import run_curtailed, test_fields, undecided_note
from lvmdiag.stats.two_sample import permutation_lower_bound

#: the global test counts articles above this upper quantile of the reference scores
TAIL_QUANTILE = 0.01
#: a global test needs at least this many reference articles (else the quantile is meaningless)
MIN_REFERENCE_ARTICLES = 10


@dataclass(frozen=True)
class ForeignArticle(Result):
    """An article of the split named foreign-looking (conformal p, BH-adjusted across the split's articles)."""

    article: str
    n_windows: int
    score: float
    pvalue: float
    pvalue_adjusted: float
    text: str | None = None  # its first chunk's text, when a texts file sits beside the store

    def to_markdown(self) -> str:
        return f"{self.article} ({self.n_windows} windows): score {fmt(self.score)}, BH p {fmt_p(self.pvalue_adjusted)}"


@dataclass(frozen=True)
class Contamination(Result):
    """Article-level contamination of ``split`` relative to ``reference``.

    Attributes
    ----------
    split, reference : the compared splits
    n_articles, n_reference_articles : articles scored on each side
    n_windows : windows of the split's scored articles
    tail_quantile : q of the global test (share above the reference's 1 - q quantile)
    threshold : that quantile of the reference's leave-one-out scores
    global_test : share of the split's articles above ``threshold`` vs its whole-article permutation null
    flagged : the split's articles with BH-adjusted conformal p <= alpha, most foreign first
    flagged_window_share : share of the split's windows inside flagged articles
    min_pvalue : the smallest conformal p-value possible, 1 / (n_reference_articles + 1)
    alpha : FDR level of ``flagged`` and level of the global verdict
    note : caveats (resolution, too few articles)
    """

    split: str
    reference: str
    n_articles: int
    n_reference_articles: int
    n_windows: int
    tail_quantile: float
    threshold: float
    global_test: TestResult
    flagged: tuple[ForeignArticle, ...]
    flagged_window_share: float
    min_pvalue: float
    alpha: float
    note: str = ""

    def verdict(self) -> str:
        g = self.global_test
        share = g.statistic
        head = (f"{self.split}: {share:.1%} of {self.n_articles} articles score above the reference's "
                f"{1 - self.tail_quantile:.0%} quantile (chance {fmt(g.null_value)})")
        status = g.status(self.alpha)
        if status == "significant":
            text = f"{head}; more foreign-looking articles than chance ({g.evidence(self.alpha)})"
        elif status == "nominal":
            text = f"{head}; {g.evidence(self.alpha)}"
        elif undecided := undecided_note([g], self.alpha):
            text = f"{head}; {undecided}"
        else:
            text = f"{head}; no more foreign-looking articles than chance (p {fmt_p(g.pvalue, g.n_resamples)})"
        if self.flagged:
            text += (f"; {len(self.flagged)} article(s) named at FDR {self.alpha:g} "
                     f"({self.flagged_window_share:.1%} of {self.split}'s windows)")
        return text

    def to_markdown(self) -> str:
        lines = [f"**Article-level contamination, {self.split} vs {self.reference}:** {self.verdict()}.", ""]
        if self.flagged:
            with_text = any(a.text for a in self.flagged)
            rows = [[a.article, a.n_windows, fmt(a.score), fmt_p(a.pvalue), fmt_p(a.pvalue_adjusted)]
                    + ([one_line(a.text)] if with_text else []) for a in self.flagged[:20]]
            header = ["foreign-looking article", "windows", "score", "conformal p", "BH p"]
            lines += [md_table(header + (["first chunk"] if with_text else []), rows), ""]
            if len(self.flagged) > 20:
                lines += [f"({len(self.flagged) - 20} more in the JSON.)", ""]
        if self.note:
            lines += [self.note, ""]
        return "\n".join(lines)


def centroid_scores(ref_means: np.ndarray, other_means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(leave-one-out reference scores, split scores): 1 - cos(article mean, centroid of reference means)."""
    ref = _unit(ref_means)
    oth = _unit(other_means)
    n = ref.shape[0]
    total = ref.sum(axis=0)
    loo = (total[None, :] - ref) / max(n - 1, 1)  # (n, D) centroid without the article itself
    ref_scores = 1.0 - np.einsum("ij,ij->i", ref, _unit(loo))
    centroid = _unit((total / n)[None, :])[0]
    return ref_scores, 1.0 - oth @ centroid


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def conformal_pvalues(ref_scores: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """p_j = (1 + #{ref >= s_j}) / (n_ref + 1): large scores (far from the centre) get small p."""
    srt = np.sort(np.asarray(ref_scores, dtype=np.float64))
    n_ge = srt.size - np.searchsorted(srt, np.asarray(scores, dtype=np.float64) - 1e-12, side="left")
    return (1.0 + n_ge) / (srt.size + 1.0)


def _tail_share(pool: np.ndarray, in_other: np.ndarray, q: float) -> np.ndarray:
    """Share of 'other' scores above the (1 - q) quantile of the rest, for each row of the (b, n) label matrix.

    Vectorised over rows: the pool is sorted once; each row's quantile of the rest is interpolated
    between two order statistics found from the cumulative count of rest members (as ``np.quantile``).
    """
    in_other = np.atleast_2d(np.asarray(in_other, dtype=bool))
    order = np.argsort(pool, kind="stable")
    srt = np.asarray(pool, dtype=np.float64)[order]
    lab = in_other[:, order]  # (b, n) in sorted order
    rest_cum = np.cumsum(~lab, axis=1)  # rest members at or before each sorted position
    n_rest = rest_cum[:, -1]
    h = (n_rest - 1) * (1.0 - q)  # np.quantile's "linear" position among the rest
    lo_i = np.floor(h).astype(np.int64)
    hi_i = np.minimum(lo_i + 1, n_rest - 1)

    def kth(i: np.ndarray) -> np.ndarray:  # value of the i-th smallest rest member, per row
        pos = np.argmax(rest_cum >= (i + 1)[:, None], axis=1)
        return srt[pos]

    v_lo, v_hi = kth(lo_i), kth(hi_i)
    thr = v_lo + (h - lo_i) * (v_hi - v_lo)
    n_other = lab.sum(axis=1)
    above = (lab & (srt[None, :] > thr[:, None])).sum(axis=1)
    return above / np.maximum(n_other, 1)


def analyze_contamination(
    ref_sums: np.ndarray,
    ref_counts: np.ndarray,
    other_sums: np.ndarray,
    other_counts: np.ndarray,
    other_names: Sequence[str],
    *,
    split: str,
    reference: str = "train",
    n_permutations: int = 199,
    alpha: float = 0.05,
    tail_quantile: float = TAIL_QUANTILE,
    rng: np.random.Generator | int | None = 0,
    family: str = "",
    other_texts: Sequence[str | None] | None = None,
) -> Contamination:
    """Score, name and test foreign-looking articles of one split from per-article vector sums.

    Parameters
    ----------
    ref_sums, ref_counts : (A_ref, D) sums of each reference article's target vectors and (A_ref,) counts
    other_sums, other_counts, other_names : the same for the split's articles, with a name per article
    split, reference : names for the report
    n_permutations : cap of the curtailed whole-article permutation test (see lvmdiag.stats.sequential)
    alpha : FDR level of the named articles and level of the global test
    tail_quantile : q; the global statistic is the share above the reference's 1 - q quantile
    rng : seed or generator
    family : multiple-testing family of the global test
    other_texts : optional text per split article (its first chunk), shown beside named articles

    Returns
    -------
    Contamination (see its attributes)
    """
    ref_counts = np.asarray(ref_counts, dtype=np.float64)
    other_counts = np.asarray(other_counts, dtype=np.float64)
    keep_r, keep_o = ref_counts > 0, other_counts > 0
    if keep_r.sum() < MIN_REFERENCE_ARTICLES or keep_o.sum() < 1:
        raise InputError(f"article-level contamination needs >= {MIN_REFERENCE_ARTICLES} {reference} articles and "
                         f">= 1 {split} article; got {int(keep_r.sum())} and {int(keep_o.sum())}.")
    rng = as_rng(rng)
    ref_means = np.asarray(ref_sums, np.float64)[keep_r] / ref_counts[keep_r, None]
    oth_means = np.asarray(other_sums, np.float64)[keep_o] / other_counts[keep_o, None]
    names = [n for n, k in zip(other_names, keep_o) if k]
    texts = [t for t, k in zip(other_texts, keep_o) if k] if other_texts is not None else [None] * len(names)
    windows = other_counts[keep_o].astype(np.int64)
    ref_scores, scores = centroid_scores(ref_means, oth_means)
    pvals = conformal_pvalues(ref_scores, scores)
    adjusted = benjamini_hochberg(pvals)
    order = np.argsort(-scores, kind="stable")
    flagged = tuple(ForeignArticle(str(names[j]), int(windows[j]), float(scores[j]), float(pvals[j]),
                                   float(adjusted[j]), texts[j]) for j in order if adjusted[j] <= alpha)
    flagged_share = float(sum(a.n_windows for a in flagged) / windows.sum()) if windows.sum() else 0.0

    pool = np.r_[ref_scores, scores]
    is_other = np.r_[np.zeros(ref_scores.size, bool), np.ones(scores.size, bool)]
    observed = float(_tail_share(pool, is_other, tail_quantile)[0])

    def draw(b: int, active: np.ndarray) -> np.ndarray:
        keys = rng.random((b, pool.size))
        ranks = np.argsort(keys, axis=1)
        labels = np.zeros((b, pool.size), bool)
        np.put_along_axis(labels, ranks[:, : scores.size], True, axis=1)
        return _tail_share(pool, labels, tail_quantile)

    tests, nulls = run_curtailed(np.array([observed]), draw, n_permutations, alpha, "greater", batch=100)
    null = nulls[:, 0]
    chance = float(np.nanmean(null)) if null.size else float("nan")
    # one-sided, as the test, at its level: the bound exceeds chance exactly when p <= alpha (a share below
    # chance is no evidence)
    ci = permutation_lower_bound(observed, null[np.isfinite(null)], chance, 1.0 - alpha, (0.0, 1.0))
    global_test = TestResult(
        name=f"{split} vs {reference} foreign-looking article share",
        statistic=observed,
        effect=Estimate(observed, ci, f"share of articles above the reference's tail quantile; one-sided "
                                      f"{100 * (1 - alpha):g}% lower bound inverting the article permutation test "
                                      "(upper end 1)"),
        method=f"1 - cos(article mean, {reference} centroid), leave-one-out for {reference}; share above its "
               f"{1 - tail_quantile:.0%} quantile; whole articles relabelled between {split} and {reference}",
        family=family, null_value=chance, **test_fields(tests.result(0)),
    )
    min_p = 1.0 / (ref_scores.size + 1)
    note = ""
    if min_p > alpha / max(scores.size, 1):
        note = (f"With {ref_scores.size} {reference} articles the smallest conformal p-value is {min_p:.2g}, above "
                f"α/m = {alpha / scores.size:.2g} for {scores.size} {split} articles: a lone foreign article cannot "
                "be named at this size (the global test still counts them).")
    return Contamination(
        split=split, reference=reference, n_articles=int(scores.size), n_reference_articles=int(ref_scores.size),
        n_windows=int(windows.sum()), tail_quantile=tail_quantile, threshold=float(np.quantile(ref_scores, 1 - tail_quantile)),
        global_test=global_test, flagged=flagged, flagged_window_share=flagged_share, min_pvalue=min_p,
        alpha=alpha, note=note,
    )

"""Result types of the temporal-bias analyzer and their construction from a streaming state.

Every mean is a ratio of per-article sums; intervals come from one article-cluster bootstrap
(:func:`lvmdiag.stats.resampling.cluster_bootstrap_ratio`) shared by all statistics.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from lvmdiag.analyzers.baselines import BASELINES, BaselineScore
from lvmdiag.analyzers.bias_state import DELTA_BIN_WIDTH, DELTA_EDGES, NO_ROW, TemporalBiasState, numerators
from lvmdiag.errors import InputError, LvmdiagWarning
from lvmdiag.results import ConfidenceInterval, Estimate, Result, TestResult
from lvmdiag.stats.resampling import cluster_bootstrap_ratio

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)

DIRECTION_CAVEAT = (
    "Δ is a lag/locality gradient: chunks nearer the target resemble it more. It does not change when "
    "every article is reversed (reversal keeps every pair of chunks at the same lag), so it cannot "
    "show forward vs backward direction."
)
BASELINE_CAVEAT = (
    "These predictors learn nothing. Copy-last has cos_prev = 1 by construction, so its margin "
    "(cos_next − cos_prev) is strongly negative: a negative margin is what a trivial predictor gets, "
    "not evidence that a model learned to predict backward. A model is useful only where it beats these rows."
)


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeltaDistribution(Result):
    """Distribution of per-window Δ: mean, sd, quantiles (from a fixed-edge histogram, ± one bin), share > 0."""

    mean: float
    sd: float
    quantiles: dict[str, float]  # keys "q05", "q25", "q50", "q75", "q95"
    share_positive: float
    n: int
    bin_width: float = DELTA_BIN_WIDTH

    def to_markdown(self) -> str:
        from lvmdiag.analyzers._bias_markdown import delta_distribution_md

        return delta_distribution_md(self)


@dataclass(frozen=True)
class ArticleExtreme(Result):
    """One article with an extreme mean Δ: where it starts in its split, and its first chunk's text if known."""

    row: int  # first usable window of the article in its split
    windows: int
    mean_delta: float
    article: str = ""  # "article <id>" when the split has ids, else its first row
    text: str | None = None  # the article's first chunk (a texts file beside the store), else None


@dataclass(frozen=True)
class ArticleDelta(Result):
    """Distribution of per-article mean Δ (each article weighted once), and its most extreme articles."""

    mean: float
    sd: float
    share_positive: float
    n: int
    mean_ci: ConfidenceInterval | None = None
    unit: str = "article"  # "block" when the groups are contiguous blocks
    lowest: tuple[ArticleExtreme, ...] = ()  # the N_EXTREMES articles with the lowest mean Δ, lowest first
    highest: tuple[ArticleExtreme, ...] = ()  # ... and the highest, highest first

    def to_markdown(self) -> str:
        from lvmdiag.analyzers._bias_markdown import article_delta_md

        return article_delta_md(self)


@dataclass(frozen=True)
class BiasResult(Result):
    """Temporal bias of one sequence set.

    Attributes
    ----------
    name, source : split name and file
    n_windows : valid windows analysed; n_excluded : rows excluded (zero/non-finite vectors, invalid)
    k, d : window length and vector dimension
    n_groups, group_method, group_note : resampling units ("given", "recovered", "contiguous-blocks")
    level, n_resamples : CI level and bootstrap size
    position_profile : mean cos(c_i, t) for i = 0..K-1, each with a cluster-bootstrap CI
    delta : cos(c_last, t) − cos(c_0, t); share_positive : share of windows with Δ > 0
    per_sequence_delta : :class:`DeltaDistribution`; per_article_delta : :class:`ArticleDelta`
    lag_profile : mean cos(x_j, x_{j+L}) for L = 1..K over the K+1 vectors of each window (L=1: adjacent coherence)
    baselines : "copy_last" and "mean_context" :class:`BaselineScore`
    """

    name: str
    source: str
    n_windows: int
    n_excluded: int
    k: int
    d: int
    n_groups: int
    group_method: str
    group_note: str
    level: float
    n_resamples: int
    position_profile: tuple[Estimate, ...]
    delta: Estimate
    share_positive: Estimate
    per_sequence_delta: DeltaDistribution
    per_article_delta: ArticleDelta
    lag_profile: tuple[Estimate, ...]
    baselines: dict[str, BaselineScore]
    direction_caveat: str = DIRECTION_CAVEAT

    @property
    def adjacent_coherence(self) -> Estimate:
        return self.lag_profile[0]

    def to_markdown(self) -> str:
        from lvmdiag.analyzers._bias_markdown import bias_result_md

        return bias_result_md(self)


@dataclass(frozen=True)
class BiasComparison(Result):
    """Temporal bias of several splits and the difference of every statistic from the reference split.

    Attributes
    ----------
    results : per split :class:`BiasResult`
    reference : the split differences are taken against ("train")
    differences : per other split, one :class:`TestResult` per statistic (other − reference), with a
        stratified article-cluster bootstrap CI and an article-permutation p-value (BH-adjusted within the split)
    shared_groups : per other split, the number of articles present in both it and the reference (leakage)
    group_method, group_note : how articles were identified
    notes : sentences the report must show (leakage, skipped comparisons)
    """

    results: dict[str, BiasResult]
    reference: str
    differences: dict[str, tuple[TestResult, ...]]
    shared_groups: dict[str, int]
    group_method: str
    group_note: str
    n_resamples: int
    level: float
    notes: tuple[str, ...] = ()
    direction_caveat: str = DIRECTION_CAVEAT

    def to_markdown(self) -> str:
        from lvmdiag.analyzers._bias_markdown import bias_comparison_md

        return bias_comparison_md(self)


def _histogram_quantile(hist: np.ndarray, q: float) -> float:
    """Quantile of the values binned in ``hist`` (edges DELTA_EDGES), linear within the bin."""
    n = hist.sum()
    cum = np.cumsum(hist)
    rank = q * n
    j = int(np.searchsorted(cum, rank, side="left"))
    j = min(j, hist.size - 1)
    before = cum[j - 1] if j > 0 else 0
    frac = (rank - before) / hist[j] if hist[j] > 0 else 0.5
    return float(DELTA_EDGES[j] + np.clip(frac, 0.0, 1.0) * DELTA_BIN_WIDTH)


def _bootstrap(
    num: np.ndarray, counts: np.ndarray, art: np.ndarray, n_resamples: int, level: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, ConfidenceInterval]:
    """Percentile article-bootstrap intervals of every ratio-of-sums column and of the per-article mean.

    One call resamples articles once for everything: with unit counts, each replicate of
    ``cluster_bootstrap_ratio`` is the weighted mean over articles of [numerators, counts, art], so
    the replicate of a ratio of sums is the ratio of two replicate columns (the weights cancel) and
    the per-article mean is a column as it is. This halves the cost against two separate calls.
    """
    p = num.shape[1]
    cols = np.column_stack([num, counts, art])
    boot = cluster_bootstrap_ratio(cols, np.ones(cols.shape[0]), n_resamples=n_resamples, level=level, rng=rng)
    reps = boot.replicates
    ratios = reps[:, :p] / reps[:, [p]]
    alpha = (1 - level) / 2
    low, high = np.nanquantile(ratios, alpha, axis=0), np.nanquantile(ratios, 1 - alpha, axis=0)
    art_ci = ConfidenceInterval(float(boot.low[p + 1]), float(boot.high[p + 1]), level)
    return low, high, art_ci


def result_from_state(
    state: TemporalBiasState,
    n_resamples: int,
    level: float,
    rng: np.random.Generator,
    group_method: str,
    group_note: str,
    name: str,
    source: str,
) -> BiasResult:
    """Build a :class:`BiasResult` from accumulated sums (groups with no valid window are dropped)."""
    if state.k is None or state.n_windows == 0:
        where = f" in {source}" if source else ""
        raise InputError(
            f"no valid windows{where} ({state.n_excluded} rows excluded as zero or non-finite); nothing to analyse."
        )
    k = state.k
    present = state.counts > 0
    counts = state.counts[present]
    sums = state.sums[present]
    n_groups = int(present.sum())
    names, num = numerators(sums, counts, k)
    unit_word = "block" if group_method == "contiguous-blocks" else "article"
    method = f"{'contiguous-block' if unit_word == 'block' else 'article-cluster'} bootstrap"
    art = (sums[:, k - 1] - sums[:, 0]) / counts  # per-article mean Δ
    art_ci = None
    if n_groups >= 2:
        low, high, art_ci = _bootstrap(num, counts, art, n_resamples, level, rng)
        value = num.sum(0) / counts.sum()
        est = {
            nm: Estimate(float(value[j]), ConfidenceInterval(float(low[j]), float(high[j]), level), method)
            for j, nm in enumerate(names)
        }
    else:
        warnings.warn(
            f"{name or source or 'this set'} holds a single {unit_word}; confidence intervals need at least 2.",
            LvmdiagWarning,
            stacklevel=3,
        )
        value = num.sum(0) / counts.sum()
        est = {nm: Estimate(float(value[j]), None, "no interval: one group") for j, nm in enumerate(names)}

    n = counts.sum()
    dsum = float(sums[:, k - 1].sum() - sums[:, 0].sum())
    mean = dsum / n
    var = (sums[:, 2 * k + 3].sum() - n * mean * mean) / (n - 1) if n > 1 else float("nan")
    per_seq = DeltaDistribution(
        mean=mean,
        sd=float(np.sqrt(max(var, 0.0))),
        quantiles={f"q{int(round(q * 100)):02d}": _histogram_quantile(state.hist, q) for q in QUANTILES},
        share_positive=float(sums[:, 2 * k + 2].sum() / n),
        n=int(round(n)),
    )
    lowest, highest = _extremes(art, counts, state.first_rows[present])
    per_article = ArticleDelta(
        mean=float(art.mean()),
        sd=float(art.std(ddof=1)) if n_groups > 1 else float("nan"),
        share_positive=float((art > 0).mean()),
        n=n_groups,
        mean_ci=art_ci,
        unit=unit_word,
        lowest=lowest,
        highest=highest,
    )
    baselines = {
        b: BaselineScore(est[f"{b}.cos_next"], est[f"{b}.cos_prev"], est[f"{b}.margin"]) for b in BASELINES
    }
    return BiasResult(
        name=name,
        source=source,
        n_windows=int(round(n)),
        n_excluded=state.n_excluded,
        k=k,
        d=int(state.d or 0),
        n_groups=n_groups,
        group_method=group_method,
        group_note=group_note,
        level=level,
        n_resamples=n_resamples,
        position_profile=tuple(est[f"pos_{i}"] for i in range(k)),
        delta=est["delta"],
        share_positive=est["share_positive"],
        per_sequence_delta=per_seq,
        per_article_delta=per_article,
        lag_profile=tuple(est[f"lag_{lag}"] for lag in range(1, k + 1)),
        baselines=baselines,
    )


#: articles listed at each end of the per-article Δ distribution
N_EXTREMES = 3


def _extremes(art: np.ndarray, counts: np.ndarray, first_rows: np.ndarray
              ) -> tuple[tuple[ArticleExtreme, ...], tuple[ArticleExtreme, ...]]:
    """The articles with the lowest and highest mean Δ (ties by first row), when their rows are known and
    there are more than 2 x N_EXTREMES articles (fewer: the distribution table says it all)."""
    if art.size <= 2 * N_EXTREMES or np.any(first_rows == NO_ROW):
        return (), ()
    order = np.lexsort((first_rows, art))

    def item(j: int) -> ArticleExtreme:
        return ArticleExtreme(row=int(first_rows[j]), windows=int(round(counts[j])), mean_delta=float(art[j]))

    return tuple(item(j) for j in order[:N_EXTREMES]), tuple(item(j) for j in order[::-1][:N_EXTREMES])


def name_extremes(result: "BiasResult", seq: object) -> "BiasResult":
    """``result`` with its extreme articles named (their id, when the split has ids) and quoted (their
    first chunk, when a texts file sits beside the store): the rows behind the summary, readable."""
    from dataclasses import replace

    from lvmdiag.data.texts import window_text

    a = result.per_article_delta
    if not (a.lowest or a.highest):
        return result
    ids = getattr(seq, "article_ids", None)
    given = ids is not None and getattr(seq, "id_source", "given") == "given"
    titles = (getattr(seq, "attrs", None) or {}).get("article_names") or {}

    def named(e: ArticleExtreme) -> ArticleExtreme:
        if given:
            title = titles.get(int(ids[e.row])) if isinstance(titles, dict) else None
            name = f"article {ids[e.row]}" + (f" ({title})" if title else "")
        else:
            name = f"{a.unit} at row {e.row}"
        return replace(e, article=name, text=window_text(seq, e.row, 0))

    return replace(result, per_article_delta=replace(a, lowest=tuple(map(named, a.lowest)),
                                                     highest=tuple(map(named, a.highest))))

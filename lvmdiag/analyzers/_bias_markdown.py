"""Markdown rendering of temporal-bias results (kept apart from the computation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lvmdiag.analyzers.baselines import baseline_table_rows
from lvmdiag.results import fmt, fmt_p, md_table

if TYPE_CHECKING:  # pragma: no cover
    from lvmdiag.analyzers.bias_results import ArticleDelta, BiasComparison, BiasResult, DeltaDistribution


def _ci_cell(est) -> str:  # noqa: ANN001
    return est.ci.to_markdown() if est.ci is not None else "—"


# Below this many resampling units per split the percentile cluster bootstrap under-covers noticeably
# (tests/analyzers/test_temporal_bias.py uses 120 articles for that reason: ~0.92 with a few dozen).
_FEW_UNITS = 30


def grouping_sentence(method: str, counts: dict[str, int], note: str, level: float, n_resamples: int) -> str:
    """One paragraph saying what the resampling unit is, and warning when it is only contiguous blocks.

    ``counts`` maps split name to its number of resampling units.
    """
    pct = f"{100 * level:g}%"
    unit = "blocks" if method == "contiguous-blocks" else "articles"
    if len(counts) == 1:
        units = f"{next(iter(counts.values()))} {unit}"
    else:
        units = " + ".join(f"{n} ({name})" for name, n in counts.items()) + f" {unit}, resampled within each split"
    if method == "contiguous-blocks":
        text = (
            f"**No article ids were given or recovered: the {pct} intervals come from a contiguous-block bootstrap** "
            f"over {units} of consecutive windows ({n_resamples} resamples). If one article spans "
            "several blocks, or blocks mix articles, these intervals may be too narrow."
        )
    else:
        how = "given in the file" if method == "given" else "recovered by linking shared chunk vectors"
        text = (
            f"{pct} intervals: article-cluster bootstrap over {units} (ids {how}; "
            f"{n_resamples} resamples), because overlapping windows of one article are not independent."
        )
    few = {name: n for name, n in counts.items() if 2 <= n < _FEW_UNITS}
    if few:  # the percentile cluster bootstrap is anti-conservative with few clusters
        which = ", ".join(f"{name}: {n}" for name, n in few.items())
        text += (f" With fewer than {_FEW_UNITS} {unit} ({which}) a percentile bootstrap tends to give intervals "
                 "somewhat too narrow; read them as approximate.")
    note = note.strip()
    return f"{text} {note[:1].upper() + note[1:]}".strip()


def delta_distribution_md(d: "DeltaDistribution") -> str:
    header = ["n", "mean", "sd", "5%", "25%", "50%", "75%", "95%", "share Δ > 0"]
    row = [d.n, fmt(d.mean), fmt(d.sd)] + [fmt(d.quantiles[k]) for k in ("q05", "q25", "q50", "q75", "q95")]
    row.append(fmt(d.share_positive))
    return md_table(header, [row]) + f"\n\nQuantiles from a fixed-edge histogram (exact to ±{d.bin_width:g})."


def article_delta_md(a: "ArticleDelta") -> str:
    ci = a.mean_ci.to_markdown() if a.mean_ci is not None else "—"
    table = md_table(
        [f"{a.unit}s", f"mean of per-{a.unit} Δ", "CI", "sd across", f"share of {a.unit}s with Δ > 0"],
        [[a.n, fmt(a.mean), ci, fmt(a.sd), fmt(a.share_positive)]],
    )
    if not (a.lowest or a.highest):
        return table
    from lvmdiag.data.texts import one_line

    quote = any(e.text for e in a.lowest + a.highest)
    rows = [[end, e.article or f"row {e.row}", e.row, e.windows, fmt(e.mean_delta)]
            + ([one_line(e.text)] if quote else [])
            for end, group in (("lowest", a.lowest), ("highest", a.highest)) for e in group]
    header = ["end", a.unit, "first row", "windows", "mean Δ"] + (["first chunk"] if quote else [])
    return "\n".join([table, "", f"{a.unit.capitalize()}s with the most extreme mean Δ:", "", md_table(header, rows)])


def bias_result_md(r: "BiasResult", heading: str = "##") -> str:
    k = r.k
    lines = [f"{heading} Temporal bias: {r.name or r.source}", ""]
    lines.append(
        f"{r.n_windows:,} windows (K = {k}, D = {r.d}) from `{r.source}`; {r.n_excluded:,} rows excluded "
        "(a zero or non-finite vector, or marked invalid)."
    )
    lines += ["", grouping_sentence(r.group_method, {r.name: r.n_groups}, r.group_note, r.level, r.n_resamples), ""]
    lines += [f"{heading}# Position profile: mean cos(c_i, target)", ""]
    rows = []
    for i, e in enumerate(r.position_profile):
        label = f"c_{i}" + (" (oldest)" if i == 0 else " (last, 'prev')" if i == k - 1 else "")
        rows.append([label, fmt(e.value), _ci_cell(e)])
    lines += [md_table(["context position", "mean cos(c_i, t)", "CI"], rows), ""]
    lines.append(
        f"**Δ = cos(c_last, t) − cos(c_0, t) = {r.delta.to_markdown()}**; share of windows with Δ > 0: "
        f"{r.share_positive.to_markdown()}."
    )
    lines += ["", f"> {r.direction_caveat}", ""]
    lines += [f"{heading}# Per-window Δ", "", r.per_sequence_delta.to_markdown(), ""]
    lines += [f"{heading}# Per-{r.per_article_delta.unit} Δ", "", r.per_article_delta.to_markdown(), ""]
    lines += [f"{heading}# Lag profile: mean cos(x_j, x_(j+L)) within each window of K+1 chunks", ""]
    rows = [
        [f"{lag}" + (" (adjacent coherence)" if lag == 1 else ""), fmt(e.value), _ci_cell(e)]
        for lag, e in enumerate(r.lag_profile, start=1)
    ]
    lines += [md_table(["lag L", "mean cos", "CI"], rows), ""]
    lines += [f"{heading}# Trivial predictors (prev = c_last, margin = cos_next − cos_prev)", ""]
    lines += [md_table(["predictor", "cos_next", "cos_prev", "margin"], baseline_table_rows(r.baselines)), ""]
    from lvmdiag.analyzers.bias_results import BASELINE_CAVEAT

    lines += [f"> {BASELINE_CAVEAT}", ""]
    return "\n".join(lines)


def bias_comparison_md(c: "BiasComparison") -> str:
    names = list(c.results)
    first = c.results[c.reference]
    lines = ["# Temporal bias report", ""]
    lines.append(f"Splits: {', '.join(f'{nm} ({c.results[nm].n_windows:,} windows)' for nm in names)}. "
                 f"K = {first.k}, D = {first.d}.")
    counts = {nm: r.n_groups for nm, r in c.results.items()}
    lines += ["", grouping_sentence(c.group_method, counts, c.group_note, c.level, c.n_resamples), ""]
    lines += [f"> {c.direction_caveat}", ""]
    for note in c.notes:
        lines += [f"**{note}**", ""]
    lines += ["## Summary", ""]
    header = ["statistic"] + names
    rows = [["Δ = cos(c_last,t) − cos(c_0,t)"] + [c.results[nm].delta.to_markdown() for nm in names]]
    rows.append(["adjacent coherence (lag 1)"] + [c.results[nm].adjacent_coherence.to_markdown() for nm in names])
    for b, label in (("copy_last", "copy-last margin"), ("mean_context", "mean-of-context margin")):
        rows.append([label] + [c.results[nm].baselines[b].margin.to_markdown() for nm in names])
    lines += [md_table(header, rows), ""]
    for nm, tests in c.differences.items():
        lines += [f"## Differences {nm} − {c.reference}", ""]
        rows = [
            [t.name, fmt(t.statistic), _ci_cell(t.effect), fmt_p(t.pvalue, t.n_resamples),
             fmt_p(t.pvalue_adjusted, t.n_resamples), t.n_resamples]
            for t in tests
        ]
        lines += [md_table(["statistic", "difference", "CI", "p (permutation)", "p (BH)", "permutations"], rows), ""]
        unit = "block" if c.group_method == "contiguous-blocks" else "article"
        cap = max((t.n_resamples_cap or t.n_resamples) for t in tests) if tests else 0
        lines.append(
            f"CI: stratified {unit}-cluster bootstrap ({c.n_resamples} replicates); p: {unit} labels permuted "
            f"between the two splits, p = (b+1)/(B+1) over the B drawn (at most {cap}; a test stops drawing once it "
            "cannot reach α); BH: Benjamini-Hochberg within this table, the family of this comparison (the same in "
            "`lvmdiag data`). Lag K (= cos(c_0, t)) and the copy-last margin (= cos(c_last, t) − 1) are not "
            "repeated here."
        )
        lines.append("")
    for nm in names:
        lines += [bias_result_md(c.results[nm], heading="##"), ""]
    return "\n".join(lines)

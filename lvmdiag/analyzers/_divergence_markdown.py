"""Markdown tables of one divergence comparison (kept apart from the computation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lvmdiag.results import TestResult, fmt, fmt_p, md_table

if TYPE_CHECKING:
    from lvmdiag.analyzers.divergence import SplitComparison

_STAT_LABELS = {
    "delta": "Δ = cos(c_last,t) − cos(c_0,t)",
    "coherence": "adjacent coherence (lag 1) mean cos(x_j,x_j+1)",
    "target_norm": "target norm",
    "context_norm": "mean context norm",
}


def _test_row(label: str, t: TestResult, chance: float | None) -> list[str]:
    adj = "—" if t.pvalue_adjusted is None else fmt_p(t.pvalue_adjusted, t.n_resamples)
    return [label, t.effect.to_markdown(), fmt(chance), fmt_p(t.pvalue, t.n_resamples), adj, str(t.n_resamples)]


def comparison_markdown(c: SplitComparison) -> list[str]:
    lines = [
        f"### {c.other} vs {c.reference}",
        "",
        f"{c.n_windows[0]} {c.reference} windows in {c.n_units[0]} articles; "
        f"{c.n_windows[1]} {c.other} windows in {c.n_units[1]} articles.",
        "",
    ]
    rows = []
    for v in c.views:
        rows.append([f"{v.view}: cos(mean {c.reference}, mean {c.other})", v.mean_cosine.to_markdown(), "—", "—", "—", "—"])
        rows.append(_test_row(f"{v.view}: ‖mean shift‖", v.mean_shift, v.chance.get("mean_shift")))
        rows.append(_test_row(f"{v.view}: MMD² (RBF, RFF)", v.mmd, v.chance.get("mmd")))
        rows.append(_test_row(f"{v.view}: classifier AUC (CV by article)", v.classifier, v.chance.get("classifier")))
    bound = c.views[0].classifier.effect.ci.level if c.views and c.views[0].classifier.effect.ci else 0.95
    lines += [md_table(["embedding test", f"effect [95% CI; classifier: one-sided {100 * bound:g}% bound]", "chance",
                        "p", "BH p", "permutations"], rows), ""]
    rows = [_test_row("position profile cos(c_i,t): ‖mean difference‖", c.profile, c.profile_chance)]
    for s in c.statistics:
        label = _STAT_LABELS.get(s.statistic, s.statistic)
        rows.append(_test_row(f"{label}: KS D", s.ks, s.chance.get("ks")))
        rows.append(_test_row(f"{label}: Wasserstein-1", s.wasserstein, s.chance.get("wasserstein")))
    lines += [md_table(["per-window statistic", "effect [95% CI]", "chance", "p", "BH p", "permutations"], rows), ""]
    means = [
        [_STAT_LABELS.get(s.statistic, s.statistic), fmt(s.mean[0]), fmt(s.mean[1])] for s in c.statistics
    ]
    listed = {s.statistic for s in c.statistics}
    for i, (pa, pb) in enumerate(zip(*c.profile_means)):
        if f"cos(c_{i},t)" not in listed:  # one row per quantity: the per-window statistics may list it already
            means.append([f"cos(c_{i},t)", fmt(pa), fmt(pb)])
    lines += [md_table(["mean of", c.reference, c.other], means), ""]
    lines += [f"- {n}" for n in c.notes]
    if c.notes:
        lines.append("")
    return lines

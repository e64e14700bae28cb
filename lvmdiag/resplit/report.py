"""resplit_report.md: before/after shares, per-stratum shares, guarantees, bias and divergence/leakage.

Rendering only: every number comes from the assignment, the verification read back from disk, or an
analyzer's result. Analyzer calls are seeded, so the report is byte-identical for the same seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import LvmdiagError
from lvmdiag.resplit.assign import Assignment, plain_group_split
from lvmdiag.resplit.strata import ArticleStats, Strata
from lvmdiag.resplit.verify import Verification
from lvmdiag.results import fmt, md_table


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%" if np.isfinite(x) else "—"


def _stratum_table(strata: Strata, labels: dict[str, np.ndarray], names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(H, len(names)) window share of each named part within each stratum, and (H,) windows per stratum."""
    h = strata.n_strata
    table = np.zeros((h, len(names)))
    for j, nm in enumerate(names):
        lab = labels[nm]
        if lab.size:
            table[:, j] = np.bincount(strata.codes[lab], minlength=h)
    totals = table.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return table / totals[:, None], totals


def render_report(
    *,
    names: tuple[str, ...],
    ratios: tuple[float, ...],
    assignment: Assignment,
    strata: Strata,
    verification: Verification,
    before: dict[str, float],
    in_sets: dict[str, SequenceSet],
    in_labels: dict[str, np.ndarray],
    outputs: dict[str, SequenceSet],
    out_labels: dict[str, np.ndarray],
    group_method: str,
    form: str,
    stats: ArticleStats,
    seed: int,
    analyses: bool = True,
    n_resamples: int = 500,
    block_rows: int = 8192,
) -> str:
    """The markdown report of one resplit (see module docstring for the sections)."""
    lines: list[str] = ["# Resplit report", ""]
    n_total = int(assignment.sizes.sum())
    lines.append(
        f"{n_total} windows from {len(in_sets)} input split(s) ({', '.join(in_sets)}), grouped {group_method}: "
        f"{assignment.sizes.size} articles (largest {int(assignment.sizes.max())} windows). "
        f"Written as `{form}`; seed {seed}; stratified on {', '.join(strata.variables) or 'nothing'} "
        f"({strata.n_strata} strata)."
    )
    if strata.variables and strata.n_strata == 1:
        # say so plainly: "stratified" with one stratum is an unstratified group split
        lines[-1] += (f" With {assignment.sizes.size} articles no stratum of the minimum size could be formed, so "
                      "this is a plain window-ratio group split; more articles (or fewer variables) allow strata.")
    lines += ["", "## Guarantees, checked by reading the written files back", "", verification.to_markdown(), ""]
    summary_at = len(lines)

    # ---- shares before and after
    in_names = list(in_sets)
    straddle = _straddling(in_labels)
    lines += ["## Window shares", "", "Before (the input files):", ""]
    rows = []
    for nm in in_names:
        arts = np.unique(in_labels[nm]).size
        rows.append([nm, in_sets[nm].n, _pct(before[nm]), arts, straddle.get(nm, 0)])
    lines.append(md_table(["input split", "windows", "share", "articles", "articles also in another input"], rows))
    lines += ["", "After (by window count):", ""]
    rows = []
    for i, nm in enumerate(names):
        rows.append([
            nm, verification.n_windows[i], _pct(ratios[i]), _pct(verification.achieved[i]),
            fmt_signed(verification.achieved[i] - ratios[i]), int((assignment.split_of_group == i).sum()),
        ])
    lines.append(md_table(["split", "windows", "target", "achieved", "achieved − target", "articles"], rows))
    lines += [
        "",
        f"Stated tolerance: |achieved − target| ≤ largest article / total windows = {fmt_num(assignment.tolerance)} "
        f"(largest-deficit greedy bound, see `lvmdiag.resplit.assign`); worst achieved {fmt_num(assignment.max_deviation)}.",
        "",
    ]

    # ---- per-stratum shares
    sizes = assignment.sizes
    before_sh, st_tot = _stratum_table(strata, in_labels, in_names)
    after_sh, _ = _stratum_table(strata, out_labels, list(names))
    counts = np.bincount(strata.codes, minlength=strata.n_strata)
    header = ["stratum", "articles", "windows"] + [f"before {n}" for n in in_names] + [f"after {n}" for n in names]
    rows = []
    for hh in range(strata.n_strata):
        rows.append(
            [strata.labels[hh], int(counts[hh]), int(st_tot[hh])]
            + [_pct(x) for x in before_sh[hh]]
            + [_pct(x) for x in after_sh[hh]]
        )
    plain = plain_group_split(sizes, ratios, strata.codes, rng=seed)
    lines += [
        "## Per-stratum shares",
        "",
        md_table(header, rows),
        "",
        f"Worst per-stratum deviation from the targets: this split {fmt_num(assignment.max_stratum_deviation)}; "
        f"a plain group shuffle cut by article count (what `GroupShuffleSplit` does), same seed: "
        f"{fmt_num(plain.max_stratum_deviation)} per stratum, {fmt_num(plain.max_deviation)} overall.",
        "",
    ]

    # ---- analyses
    if analyses:
        div = _divergence_section(outputs, out_labels, names, n_resamples, seed, block_rows)
        leak = _leakage_section(outputs, out_labels, names, seed, block_rows)
        verdicts = [ln for ln in "\n".join(div + leak).splitlines() if "Verdict" in ln]
        if verdicts:
            # the analyzers' own verdict lines, repeated near the top
            lines[summary_at:summary_at] = ["## Verdicts between the new splits", ""] + [f"- {v}" for v in verdicts] + [""]
        lines += ["## Temporal bias (Δ and position profile) per split, with article-bootstrap CIs", ""]
        lines += ["### Before (input files)", ""]
        lines += _bias_section(in_sets, in_labels, group_method, n_resamples, seed, block_rows)
        lines += ["### After (new splits, read back from disk)", ""]
        lines += _bias_section(outputs, out_labels, group_method, n_resamples, seed, block_rows)
        lines += ["## Divergence and leakage between the new splits", ""] + div + leak
    else:
        lines += ["Bias, divergence and leakage analyses were not run (analyses=False).", ""]
    return "\n".join(lines).rstrip() + "\n"


def fmt_num(x: float) -> str:
    return fmt(x, 4)


def fmt_signed(x: float) -> str:
    return f"{x:+.4f}"


def _straddling(labels: dict[str, np.ndarray]) -> dict[str, int]:
    """Per input split: articles that also occur in another input split (the old leakage)."""
    uniq = {nm: np.unique(lab) for nm, lab in labels.items()}
    out = {}
    for nm, u in uniq.items():
        others = [v for o, v in uniq.items() if o != nm]
        out[nm] = int(np.isin(u, np.concatenate(others)).sum()) if others else 0
    return out


def _skip(what: str, exc: BaseException) -> list[str]:
    return [f"{what}: not computed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}).", ""]


def _bias_section(
    sets: dict[str, SequenceSet], labels: dict[str, np.ndarray], method: str, n_resamples: int, seed: int, block_rows: int
) -> list[str]:
    if len(sets) < 2:
        return ["(one input split: nothing to compare)", ""]
    try:
        from lvmdiag.analyzers.temporal_bias import compare_bias

        res = compare_bias(
            dict(sets), groups=dict(labels), group_method=_bias_method(method), reference=next(iter(sets)),
            n_resamples=n_resamples, rng=seed, block_rows=block_rows,
        )
    except (ImportError, LvmdiagError, ValueError) as exc:
        return _skip("temporal bias comparison", exc)
    return [_demote(res.to_markdown()), ""]


def _bias_method(method: str) -> str:
    return "recovered" if method.startswith("recovered") else "given"


def _demote(md: str) -> str:
    """Nest an analyzer's markdown under our headings (# -> ####)."""
    return "\n".join("###" + line if line.startswith("#") else line for line in md.splitlines())


# The divergence analyzer dominates the report's cost (MMD and classifier per permutation); 100
# whole-article permutations resolve p down to 1/101, enough for a verdict on a fresh split.
def _divergence_section(
    outputs: dict[str, SequenceSet], labels: dict[str, np.ndarray], names: tuple[str, ...], n_resamples: int, seed: int, block_rows: int
) -> list[str]:
    try:
        from lvmdiag.analyzers.divergence import analyze_divergence

        res = analyze_divergence(
            dict(outputs), groups=[labels[n] for n in outputs], reference=names[0],
            n_permutations=min(n_resamples, 100), n_bootstrap=min(n_resamples, 100), rng=seed, block_rows=block_rows,
        )
    except (ImportError, LvmdiagError, ValueError) as exc:
        return _skip("divergence", exc)
    return [_demote(res.to_markdown()), ""]


def _leakage_section(
    outputs: dict[str, SequenceSet], labels: dict[str, np.ndarray], names: tuple[str, ...], seed: int, block_rows: int
) -> list[str]:
    try:
        from lvmdiag.analyzers.leakage import analyze_leakage
        from lvmdiag.data.groups import GroupAssignment

        labs = [np.asarray(labels[n], dtype=np.int64) for n in outputs]
        n_groups = int(max((int(x.max()) + 1 for x in labs if x.size), default=0))
        ga = GroupAssignment(labels=labs, method="given", n_groups=n_groups, note="articles as assigned by the resplit.")
        res: Any = analyze_leakage(dict(outputs), groups=ga, reference=names[0], block_rows=max(block_rows // 2, 1))
    except (ImportError, LvmdiagError, ValueError) as exc:
        return _skip("leakage", exc)
    return [_demote(res.to_markdown()), ""]

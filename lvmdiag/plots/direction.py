"""Figure for the direction analyzer: classifier AUC / signed score per split, and lag-matched offsets."""

from __future__ import annotations

import os
from typing import Any

from lvmdiag.analyzers.direction import DirectionResult
from lvmdiag.plots import new_figure, save_or_return
from lvmdiag.stats.two_sample import LowerBound


def plot_direction(result: DirectionResult, path: str | os.PathLike[str] | None = None) -> Any:
    """Write a two-panel PNG to ``path`` (path None: return the Figure).

    Left: per split, CV AUC − 0.5 with a bar down to its one-sided lower bound at 1 − alpha (the test is
    one-sided, so the bar is open upwards) and the signed score with its two-sided 1 − alpha CI. Right:
    forward − backward lag-matched cosine differences with 95% CIs, expected at 0.
    """
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(10, 4))
    pct = f"{100 * (1 - result.alpha):g}%"  # both intervals invert their tests at level 1 - alpha
    names = [s.split for s in result.splits]
    used: set[str] = set()
    for i, s in enumerate(result.splits):
        for test, offset, colour, shift, label in (
            (s.classifier, -0.12, "C0", 0.5, f"CV AUC − 0.5 (one-sided {pct} lower bound)"),
            (s.signed, 0.12, "C3", 0.0, f"signed score vs {result.reference}"),
        ):
            if test is None or test.effect.ci is None:
                continue
            v, lo, hi = test.effect.value - shift, test.effect.ci.low - shift, test.effect.ci.high - shift
            if isinstance(test.effect.ci, LowerBound):  # one-sided: a bar down to the bound, open upwards
                hi = v
            status = test.status(result.alpha)
            # filled marker: significant after the family's correction; hollow: not (even if the CI excludes 0)
            ax1.errorbar(i + offset, v, yerr=[[v - lo], [hi - v]], fmt="o", color=colour, capsize=4,
                         mfc=colour if status == "significant" else "white", mew=1.5,
                         label=None if label in used else label)
            if status != "none":
                ax1.annotate("*" if status == "significant" else "n.s. after BH", (i + offset, hi),
                             textcoords="offset points", xytext=(0, 4), ha="center", fontsize=8, color=colour)
            used.add(label)
    ax1.axhline(0.0, color="grey", lw=0.8)
    ax1.set_xticks(range(len(names)), names)
    ax1.set_ylabel("0 = no direction")
    ax1.set_title(f"Direction (AUC: one-sided {pct} lower bound; signed score: {pct} CI)\n"
                  "filled/* = significant after BH in its split's family", fontsize=9)
    if used:
        ax1.legend(fontsize=8, loc="best")
    labels = []
    for i, s in enumerate(result.splits):
        for j, m in enumerate(s.lag_matched):
            x = j + (i - (len(result.splits) - 1) / 2) * 0.15
            ci = m.difference.ci
            yerr = None if ci is None else [[m.difference.value - ci.low], [ci.high - m.difference.value]]
            ax2.errorbar(x, m.difference.value, yerr=yerr, fmt="o", color=f"C{i}", capsize=3,
                         label=s.split if j == 0 else None)
            if i == 0:
                labels.append(f"{m.pivot}\nk={m.lag}")
    ax2.axhline(0.0, color="grey", lw=0.8)
    ax2.set_xticks(range(len(labels)), labels)
    ax2.set_ylabel("cos(x_j, x_j+k) − cos(x_j, x_j−k)")
    ax2.set_title("Lag-matched offsets (expected 0: symmetric)")
    ax2.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return save_or_return(fig, path, dpi=110)

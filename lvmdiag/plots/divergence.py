"""Figure for the divergence analyzer: test strengths against the BH threshold, and per-window distributions."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from lvmdiag.analyzers.divergence import DivergenceResult
from lvmdiag.plots import new_figure, save_or_return


def plot_divergence(result: DivergenceResult, path: str | os.PathLike[str] | None = None) -> Any:
    """Write a PNG to ``path`` (path None: return the Figure): one row per compared split.

    Left: -log10 of each test's BH-adjusted p-value (bars) with the α line; the floor of a
    permutation p-value, 1/(B+1), is the longest possible bar. Right: histograms (fixed edges, as
    stored in the result) of Δ = cos(c_last, t) − cos(c_0, t) for the reference and the other split.
    """
    n = max(1, len(result.comparisons))
    fig, axes = new_figure(n, 2, figsize=(12, 4.2 * n), squeeze=False,
                           gridspec_kw={"width_ratios": [1.6, 1]})
    for row, cmp in enumerate(result.comparisons):
        ax = axes[row, 0]
        tests = cmp.tests()
        labels = [t.name.replace(f"{cmp.other} vs {cmp.reference} ", "") for t in tests]
        padj = np.array([t.p for t in tests])
        strength = -np.log10(padj)
        palette = {"significant": "C3", "nominal": "C1", "none": "C0"}
        colours = [palette[t.status(result.alpha)] for t in tests]
        ax.barh(range(len(tests)), strength, color=colours)
        ax.axvline(-np.log10(result.alpha), color="k", ls="--", lw=1, label=f"BH α = {result.alpha}")
        cap = max((t.n_resamples_cap or t.n_resamples) for t in tests) if tests else result.n_permutations
        ax.axvline(np.log10(cap + 1), color="grey", ls=":", lw=1, label="p floor 1/(B+1), this comparison's cap")
        ax.set_yticks(range(len(tests)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel("−log10 BH-adjusted p (article permutation)")
        ax.set_title(f"{cmp.other} vs {cmp.reference}: red = significant after BH, orange = interval or raw p only", fontsize=9)
        ax.legend(fontsize=8, loc="lower right")

        ax = axes[row, 1]
        stat = next((s for s in cmp.statistics if s.statistic == "delta"), None)
        if stat is None:
            ax.set_axis_off()
            continue
        edges = np.asarray(stat.edges)
        width = np.diff(edges)
        for i, (name, counts) in enumerate(((cmp.reference, stat.counts[0]), (cmp.other, stat.counts[1]))):
            c = np.asarray(counts, float)
            density = c / max(c.sum(), 1.0) / width
            ax.stairs(density, edges, color=f"C{i}", lw=1.5, label=f"{name} (mean {stat.mean[i]:+.3f})")
        ax.set_xlabel("Δ = cos(c_last, t) − cos(c_0, t) per window")
        ax.set_ylabel("density")
        ax.set_title(f"KS D {stat.ks.statistic:.3f}, W1 {stat.wasserstein.statistic:.3f}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_or_return(fig, path, dpi=110)

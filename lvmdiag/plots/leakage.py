"""Figure for the leakage analyzer: share of windows affected by each kind, and nearest-train cosines."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from lvmdiag.analyzers.leakage import LeakageResult
from lvmdiag.plots import new_figure, save_or_return


def plot_leakage(result: LeakageResult, path: str | os.PathLike[str] | None = None) -> Any:
    """Write a two-panel PNG to ``path`` (path None: return the Figure): (left) share of each split's windows affected, by kind; (right) counts of
    distinct chunks without an exact train copy per bin of their nearest-train cosine, threshold marked."""
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(10, 4))
    kinds = [("shared article", "share_shared_article"), ("shared chunk", "share_shared_chunk"),
             ("shared window", "share_shared_window"), ("near-dup chunk", "share_near_chunk"),
             ("any", "share_affected")]
    width = 0.8 / max(len(result.splits), 1)
    for i, s in enumerate(result.splits):
        vals = [100 * (getattr(s, attr) or 0.0) for _, attr in kinds]
        ax1.bar(np.arange(len(kinds)) + (i - (len(result.splits) - 1) / 2) * width, vals, width, label=s.split,
                color=f"C{i}")
    ax1.set_xticks(range(len(kinds)), [k for k, _ in kinds], rotation=20)
    ax1.set_ylabel(f"% of windows sharing with {result.reference}")
    ax1.set_ylim(0, 100)
    ax1.set_title("Leakage by kind")
    ax1.legend(fontsize=8)
    edges = np.asarray(result.cos_edges)
    centres = np.arange(len(edges) - 1)
    for i, s in enumerate(result.splits):
        ax2.bar(centres + (i - (len(result.splits) - 1) / 2) * width, np.maximum(s.cos_hist, 0), width,
                label=s.split, color=f"C{i}")
    ax2.set_xticks(centres, [f"{a:g}–{b:g}" for a, b in zip(edges[:-1], edges[1:])], rotation=45, fontsize=7)
    above = np.searchsorted(edges, result.threshold, side="right") - 1  # bin holding the threshold
    ax2.axvline(above - 0.5, color="red", lw=1, ls="--", label=f"threshold {result.threshold:g}")
    ax2.set_yscale("symlog")
    ax2.set_ylabel("distinct chunks (no exact copy)")
    ax2.set_xlabel("cosine to the nearest train chunk")
    ax2.set_title("Near-duplicate search")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return save_or_return(fig, path, dpi=110)

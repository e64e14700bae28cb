"""Figure for the temporal-bias analyzer: position profiles and lag profiles per split, with CI bands."""

from __future__ import annotations

import os
from typing import Any

from lvmdiag.analyzers.temporal_bias import BiasComparison, BiasResult
from lvmdiag.plots import new_figure, save_or_return
from lvmdiag.results import Estimate


def _band(ax, xs, estimates: tuple[Estimate, ...], colour: str, label: str) -> None:  # noqa: ANN001
    values = [e.value for e in estimates]
    ax.plot(xs, values, "o-", color=colour, label=label, lw=1.5, ms=4)
    if all(e.ci is not None for e in estimates):
        ax.fill_between(xs, [e.ci.low for e in estimates], [e.ci.high for e in estimates], color=colour, alpha=0.2)


def plot_bias(result: BiasResult | BiasComparison, path: str | os.PathLike[str] | None = None) -> Any:
    """Write a two-panel PNG to ``path`` (path None: return the Figure).

    Left: mean cos(c_i, target) against context position i (0 = oldest, K−1 = last), one line per split
    with its confidence band. Right: mean cos(x_j, x_(j+L)) within windows against lag L = 1..K.
    The two panels mirror each other (position i sits at lag K − i from the target), which is the
    picture behind "Δ is a lag gradient".
    """
    results = result.results if isinstance(result, BiasComparison) else {result.name or "data": result}
    fig, (ax1, ax2) = new_figure(1, 2, figsize=(10, 4))
    for i, (name, r) in enumerate(results.items()):
        colour = f"C{i}"
        label = f"{name} (Δ {r.delta.value:+.3f})"
        _band(ax1, list(range(r.k)), r.position_profile, colour, label)
        _band(ax2, list(range(1, r.k + 1)), r.lag_profile, colour, name)
    first = next(iter(results.values()))
    level = f"{100 * first.level:g}%"
    unit = "contiguous-block" if first.group_method == "contiguous-blocks" else "article-cluster"
    ax1.set_xticks(range(first.k), [f"c_{i}" for i in range(first.k)])
    ax1.set_xlabel("context position (c_last nearest the target)")
    ax1.set_ylabel("mean cos(c_i, target)")
    ax1.set_title(f"Position profile ({level} {unit} bootstrap)")
    ax1.legend(fontsize=8, loc="best")
    ax2.set_xticks(range(1, first.k + 1))
    ax2.set_xlabel("lag L (chunks apart)")
    ax2.set_ylabel("mean cos(x_j, x_j+L)")
    ax2.set_title("Lag profile within windows")
    ax2.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return save_or_return(fig, path, dpi=110)

"""Figures (matplotlib): one module per analyzer; functions take a result and a path (PNG) or None (a Figure).

Figures are built with :class:`matplotlib.figure.Figure`, not pyplot: no backend is switched and no
global figure state is kept, so drawing works the same in a script, a CLI run and a notebook.
:func:`figures_of` maps any result to its figures (used by ``Result.plot()`` and the HTML report).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from lvmdiag._atomic import atomic_path


def new_figure(nrows: int, ncols: int, *, figsize: tuple[float, float], **subplots: Any):  # noqa: ANN201
    """``(fig, axes)`` like ``plt.subplots`` but without pyplot (imports matplotlib only now)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **subplots)


def save_or_return(fig: Any, path: str | os.PathLike[str] | None, **savefig: Any) -> Any:
    """Write ``fig`` atomically as PNG to ``path`` (path None: return the Figure) (returns None), or return the Figure when ``path`` is None."""
    if path is None:
        return fig
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", **savefig)
    return None


# result class name -> (module, function, attribute holding the plotted result or None)
_PLOTTERS = {
    "BiasResult": ("lvmdiag.plots.bias", "plot_bias", None),
    "BiasComparison": ("lvmdiag.plots.bias", "plot_bias", None),
    "BiasReport": ("lvmdiag.plots.bias", "plot_bias", "bias"),
    "DirectionResult": ("lvmdiag.plots.direction", "plot_direction", None),
    "DivergenceResult": ("lvmdiag.plots.divergence", "plot_divergence", None),
    "LeakageResult": ("lvmdiag.plots.leakage", "plot_leakage", None),
}
_SECTIONS = {"bias": "plot_bias", "direction": "plot_direction", "divergence": "plot_divergence",
             "leakage": "plot_leakage"}


def figures_of(result: Any) -> dict[str, Any]:
    """Every figure of ``result`` as ``{name: matplotlib Figure}`` (empty when the result has none)."""
    kind = type(result).__name__
    if kind in _PLOTTERS:
        module, func, attr = _PLOTTERS[kind]
        target = getattr(result, attr) if attr else result
        name = {"BiasReport": "bias"}.get(kind, module.rsplit(".", 1)[1])
        figs = {name: getattr(importlib.import_module(module), func)(target, None)}
        if kind == "BiasReport" and result.direction is not None:
            figs.update(figures_of(result.direction))
        return figs
    if kind == "DataReport":
        figs = {}
        for section, func in _SECTIONS.items():
            value = getattr(result, section, None)
            if value is not None:
                figs[section] = getattr(importlib.import_module(f"lvmdiag.plots.{section}"), func)(value, None)
        return figs
    if kind == "RunReport":
        from lvmdiag.report.figures import plot_run
        from lvmdiag.report.history import read_run_history

        return {"curves": plot_run(read_run_history(result.run_dir), result.events, None)}
    return {}

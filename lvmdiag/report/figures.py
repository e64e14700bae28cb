"""PNG curves of a run with its schedule events marked (matplotlib without pyplot, small files)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from lvmdiag._atomic import atomic_path
from lvmdiag.report.events import ScheduleEvent
from lvmdiag.report.history import RunHistory

_STYLE = {"val": "-", "train": "--", "ood": ":", "test": "-."}


def _mark_events(ax, events: tuple[ScheduleEvent, ...], label: bool) -> None:  # noqa: ANN001
    for ev in events:
        # an event at epoch e acts between e-1 and e: draw it there
        x = ev.epoch - 0.5
        ax.axvline(x, color="crimson", linestyle="--", linewidth=1)
        if label:
            ax.annotate(ev.name, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(2, -10),
                        textcoords="offset points", fontsize=7, color="crimson")


def plot_run(history: RunHistory, events: tuple[ScheduleEvent, ...], path: str | os.PathLike[str] | None, *,
             dpi: int = 80) -> Any:
    """Write the run's curves to ``path`` (PNG; None: return the Figure): evaluation cosines/margins, loss terms, mechanisms.

    Parameters
    ----------
    history : the run
    events : schedule events, drawn as vertical lines between the epochs they separate
    path : output PNG (written atomically), or None for the matplotlib Figure itself
    dpi : resolution (80 keeps example files small)

    Returns
    -------
    Path of the written file (the Figure when ``path`` is None).
    """
    from lvmdiag.plots import new_figure

    epochs = history.epochs
    panels = []
    if any(history.eval.values()):
        panels.append("eval")
    losses = [n for n in history.train_log if n.startswith("loss")]
    if losses:
        panels.append("loss")
    mechanisms = [n for n in ("anchor_lambda", "gate_weight_mean") if n in history.train_log]
    if mechanisms:
        panels.append("mech")
    fig, axes = new_figure(len(panels) or 1, 1, figsize=(6.4, 2.3 * max(len(panels), 1)), sharex=True, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        if panel == "eval":
            for split in history.splits():
                for name, values in history.eval[split].items():
                    if (name.startswith("cos") or name.startswith("raw_cos") or name.endswith("margin")) and not np.all(np.isnan(values)):
                        ax.plot(epochs, values, _STYLE.get(split, "-"), marker="o", markersize=3, label=f"{split} {name}")
            ax.axhline(0, color="grey", linewidth=0.5)
            ax.set_ylabel("cosine")
        elif panel == "loss":
            for name in losses:
                ax.plot(epochs, history.train_log[name], marker="o", markersize=3, label=f"train {name}")
            ax.set_ylabel("loss")
        else:
            for name in mechanisms:
                ax.plot(epochs, history.train_log[name], marker="o", markersize=3, label=name)
            ax.set_ylabel("value")
        _mark_events(ax, events, label=ax is axes[0, 0])
        ax.legend(fontsize=6, loc="best", ncol=2)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("epoch")
    axes[0, 0].set_title(f"{Path(history.run_dir).name}: curves (dashed red = schedule event)", fontsize=9)
    fig.tight_layout()
    if path is None:
        return fig
    target = Path(path)
    with atomic_path(target, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return target

"""Next-chunk metrics of a batch of predictions, with the definitions of ``lvmdiag evaluate``.

A user's own loop logs these on train and val, so its numbers compare with ``lvmdiag train`` runs and
with the trivial baselines: q and every reference vector are normalised; ``prev`` is c_last (the last
context vector); the anchor is normalize(mean of the K context vectors); ``margin`` = cos_next - cos_prev
(signed, not a hinge loss). :class:`WindowMetrics` keeps additive sums (``update``, ``merge``,
``compute``), so batch means merge exactly into the split mean that :func:`lvmdiag.train.evaluate.evaluate`
reports; :func:`window_metrics` is the one-shot twin built from the same helper. Inputs are numpy
arrays or torch tensors (converted on the CPU with float32, as the evaluator does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lvmdiag.errors import InputError

NAMES = ("cos_next", "cos_prev", "margin", "cos_anchor")


def _as_array(x: Any, name: str) -> np.ndarray:
    """A float32 numpy view of ``x`` (numpy array, list or torch tensor, detached to the CPU)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu().float().numpy()
    try:
        return np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a numpy array or a torch tensor; got {type(x).__name__}.") from None


def _unit(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(n == 0, 1.0, n)


def _sums(predictions: Any, contexts: Any, targets: Any) -> tuple[np.ndarray, int]:
    """Sums of cos(q, t), cos(q, c_last), cos(q, anchor) over the batch (float64) and its row count."""
    q = _as_array(predictions, "predictions")
    ctx = _as_array(contexts, "contexts")
    t = _as_array(targets, "targets")
    if ctx.ndim != 3:
        raise InputError(f"`contexts` must have shape (B, K, D); got {ctx.shape}.")
    b, _, d = ctx.shape
    if q.shape != (b, d) or t.shape != (b, d):
        raise InputError(f"`predictions` and `targets` must have shape (B, D) = ({b}, {d}) to match `contexts` "
                         f"{ctx.shape}; got {q.shape} and {t.shape}.")
    q, t = _unit(q), _unit(t)  # (B, D)
    c_last, anchor = _unit(ctx[:, -1]), _unit(ctx.mean(axis=1))  # (B, D)
    sums = np.array([(q * t).sum(1).sum(dtype=np.float64), (q * c_last).sum(1).sum(dtype=np.float64),
                     (q * anchor).sum(1).sum(dtype=np.float64)])
    return sums, b


@dataclass
class WindowMetrics:
    """Streaming cos_next / cos_prev / margin / cos_anchor: ``update`` per batch, ``compute`` per epoch.

    State is three float64 sums and a row count, so ``merge`` of shards equals one pass over all rows.
    """

    sums: np.ndarray | None = None
    n: int = 0

    def update(self, predictions: Any, contexts: Any, targets: Any) -> None:
        """Add a batch: predictions (B, D), contexts (B, K, D), targets (B, D)."""
        sums, b = _sums(predictions, contexts, targets)
        self.sums = sums if self.sums is None else self.sums + sums
        self.n += b

    def merge(self, other: WindowMetrics) -> WindowMetrics:
        """The state of both shards together (neither is changed)."""
        if other.sums is None:
            return WindowMetrics(None if self.sums is None else self.sums.copy(), self.n)
        if self.sums is None:
            return WindowMetrics(other.sums.copy(), other.n)
        return WindowMetrics(self.sums + other.sums, self.n + other.n)

    def compute(self) -> dict[str, float]:
        """``{"cos_next", "cos_prev", "margin", "cos_anchor"}`` over every row added (NaN before any)."""
        if self.sums is None or self.n == 0:
            return {name: float("nan") for name in NAMES}
        nxt, prev, anchor = (float(s / self.n) for s in self.sums)
        return {"cos_next": nxt, "cos_prev": prev, "margin": float((self.sums[0] - self.sums[1]) / self.n),
                "cos_anchor": anchor}

    def reset(self) -> None:
        self.sums, self.n = None, 0


def window_metrics(predictions: Any, contexts: Any, targets: Any) -> dict[str, float]:
    """cos_next, cos_prev, signed margin and cos_anchor of one batch, as ``lvmdiag evaluate`` defines them.

    Parameters
    ----------
    predictions : (B, D) predicted next-chunk vectors (numpy or torch; normalised here)
    contexts : (B, K, D) the context windows; c_last = ``contexts[:, -1]``
    targets : (B, D) the true next chunks

    Returns
    -------
    dict
        ``cos_next`` mean cos(q, t); ``cos_prev`` mean cos(q, c_last); ``margin`` cos_next - cos_prev;
        ``cos_anchor`` mean cos(q, normalize(mean of the context)).
    """
    state = WindowMetrics()
    state.update(predictions, contexts, targets)
    return state.compute()

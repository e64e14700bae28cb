"""Helpers shared by detectors: which split and which series to look at."""

from __future__ import annotations

import re

import numpy as np

from lvmdiag.report.history import RunHistory

_COS_RE = re.compile(r"^(raw_)?cos(_|ine$)")


def primary_split(history: RunHistory) -> str | None:
    """The split detectors judge by: ``val`` when logged, else the first evaluation split."""
    splits = [s for s in history.splits() if s != "train"] or history.splits()
    return splits[0] if splits else None


def cosine_metrics(history: RunHistory, split: str) -> list[str]:
    """Names of the cosine metrics logged for ``split`` (``cos_*``, ``cosine``, ``raw_cos_*``)."""
    return [name for name in history.eval.get(split, {}) if _COS_RE.match(name)
            and not bool(np.all(np.isnan(history.eval[split][name])))]


def loss_terms(history: RunHistory) -> list[str]:
    """Names of the logged loss components (``loss_*``; the total ``loss`` excluded)."""
    return [name for name in history.train_log if name.startswith("loss_")]


def config_number(history: RunHistory, key: str) -> float | None:
    """A numeric config value, or None."""
    value = history.config.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def config_flag(history: RunHistory, key: str) -> bool:
    """A boolean config value (``true``, 1, "true", "yes"), False when absent."""
    value = history.config.get(key)
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes", "on"}
    return bool(value)

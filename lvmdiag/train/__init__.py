"""The compact P7 trainer: the only part of lvmdiag that imports torch.

``TrainConfig`` and the modules :mod:`lvmdiag.train.config`, :mod:`lvmdiag.train.evaluate` (the one
evaluation function) and :mod:`lvmdiag.train.baselines` work without torch; the model, losses and
training loop load on first use and raise an ``ImportError`` naming ``lvmdiag[train]`` without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from lvmdiag.train.config import RUN_FORMAT, TrainConfig

_LAZY = {
    "train": "lvmdiag.train.trainer",
    "TrainResult": "lvmdiag.train.trainer",
    "evaluate_checkpoint": "lvmdiag.train.inference",
    "evaluate_file": "lvmdiag.train.inference",
    "load_model": "lvmdiag.train.inference",
    "CheckpointEvaluation": "lvmdiag.train.inference",
    "build_model": "lvmdiag.train.models",
    "EvalMetrics": "lvmdiag.train.evaluate",  # (the function `evaluate` shares its module's name: import it from there)
}

__all__ = ["RUN_FORMAT", "TrainConfig", "require_torch", *_LAZY]


def require_torch() -> None:
    """Raise a clear ``ImportError`` when torch is not installed."""
    try:
        import torch  # noqa: F401
    except ImportError as exc:
        raise ImportError("the trainer needs torch: install lvmdiag[train] (pip install 'lvmdiag[train]').") from exc


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        if _LAZY[name] != "lvmdiag.train.evaluate":
            require_torch()
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lvmdiag.train' has no attribute {name!r}")

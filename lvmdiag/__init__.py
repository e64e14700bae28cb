"""lvmdiag: diagnostics for latent vector models (next-chunk embedding predictors).

The notebook API: ``lvmdiag.bias``, ``direction``, ``diverge``, ``leakage``, ``data``, ``resplit`` and
``report`` (see :mod:`lvmdiag.api`), loaded lazily on first use so that ``import lvmdiag`` stays fast
and imports neither torch, matplotlib nor pandas. Importing lvmdiag never imports torch; only
``lvmdiag.train`` does.
"""

from __future__ import annotations

import importlib
from typing import Any

from lvmdiag.errors import InputError, LvmdiagError, LvmdiagWarning, RunDirError

__version__ = "0.1.0"

_API = ("bias", "direction", "diverge", "leakage", "as_sequences")
_CALLABLE_PACKAGES = ("data", "resplit", "report")  # packages that are also API functions (lvmdiag/_callable.py)

__all__ = ["InputError", "LvmdiagError", "LvmdiagWarning", "RunDirError", "__version__", *_API, *_CALLABLE_PACKAGES]


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module("lvmdiag.api"), name)
    elif name in _CALLABLE_PACKAGES:
        value = importlib.import_module(f"lvmdiag.{name}")
    else:
        raise AttributeError(f"module 'lvmdiag' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

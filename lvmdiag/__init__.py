"""lvmdiag: diagnostics for latent vector models (next-chunk embedding predictors).

The notebook API: ``lvmdiag.bias``, ``direction``, ``diverge``, ``leakage``, ``data``, ``resplit`` and
``report`` (see :mod:`lvmdiag.api`), loaded lazily on first use so that ``import lvmdiag`` stays fast
and imports neither torch, matplotlib nor pandas. Importing lvmdiag never imports torch; only
``lvmdiag.train`` does.
"""

# No ``from __future__ import annotations`` and no module-level ``typing``/``importlib`` names: each
# would show up in ``dir(lvmdiag)`` and in tab completion next to the API.
from importlib import import_module as _import_module

from lvmdiag.errors import InputError, LvmdiagError, LvmdiagWarning, RunDirError

__version__ = "0.1.0"

_API = ("bias", "direction", "diverge", "leakage", "as_sequences")
_CALLABLE_PACKAGES = ("data", "resplit", "report")  # packages that are also API functions (lvmdiag/_callable.py)

__all__ = ["InputError", "LvmdiagError", "LvmdiagWarning", "RunDirError", "__version__", *_API, *_CALLABLE_PACKAGES]


def __getattr__(name: str) -> object:
    if name in _API:
        value = getattr(_import_module("lvmdiag.api"), name)
    elif name in _CALLABLE_PACKAGES:
        value = _import_module(f"lvmdiag.{name}")
    else:
        raise AttributeError(f"module 'lvmdiag' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public API (loaded or not), the public sub-packages already imported, and the module dunders."""
    from types import ModuleType

    names = globals()
    loaded = {n for n, v in names.items() if not n.startswith("_") and isinstance(v, ModuleType)}
    dunders = {n for n in names if n.startswith("__") and n.endswith("__")}
    return sorted({*__all__, *loaded, *dunders})

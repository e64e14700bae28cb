"""Let ``lvmdiag.data``, ``lvmdiag.resplit`` and ``lvmdiag.report`` be both packages and API functions.

Each of those names is a subpackage (``lvmdiag.data.load_sequences`` ...) and also one of the CLI
commands the notebook API offers (``lvmdiag.data(train, val)``). Python binds a subpackage to its
parent's attribute on import, so a plain function of the same name would be overwritten; instead
the package module itself becomes callable and forwards the call to :mod:`lvmdiag.api`.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class CallablePackage(types.ModuleType):
    """A package module whose call runs the API function of the same name (``lvmdiag.api.<name>``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._api_function()(*args, **kwargs)

    def _api_function(self) -> Any:
        from lvmdiag import api

        return getattr(api, self.__name__.rsplit(".", 1)[1])

    @property
    def __signature__(self) -> Any:
        """The API function's signature, so ``help``/``inspect.signature``/IDEs show its parameters."""
        import inspect

        return inspect.signature(self._api_function())


def make_callable(module_name: str) -> None:
    sys.modules[module_name].__class__ = CallablePackage

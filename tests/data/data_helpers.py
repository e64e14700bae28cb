"""Helpers shared by the data-layer tests (imported as a plain module: tests/ is not a package)."""

from __future__ import annotations

import warnings
from pathlib import Path

from lvmdiag.errors import LvmdiagWarning

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


class Recorder:
    """``with Recorder() as msgs:`` collects the LvmdiagWarning messages raised inside the block."""

    def __enter__(self) -> list[str]:
        self._cm = warnings.catch_warnings(record=True)
        self._record = self._cm.__enter__()
        warnings.simplefilter("always")
        self.messages: list[str] = []
        return self.messages

    def __exit__(self, *exc) -> None:
        self.messages.extend(str(w.message) for w in self._record if issubclass(w.category, LvmdiagWarning))
        self._cm.__exit__(*exc)

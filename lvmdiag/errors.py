"""Exception and warning types. The library raises these; only the CLI turns them into exit codes."""

from __future__ import annotations


class LvmdiagError(Exception):
    """Base class of every error lvmdiag raises on purpose."""


class InputError(LvmdiagError, ValueError):
    """A user-supplied file, key, shape or value is wrong. The message names the file, the key and the fix."""


class RunDirError(LvmdiagError, ValueError):
    """A training run directory cannot be read."""


class EngineError(LvmdiagError, RuntimeError):
    """A distributed run could not finish (workers lost beyond the retries). Nothing partial is reported."""


class LvmdiagWarning(UserWarning):
    """Legal but degraded input: the analysis continues, the warning says what was excluded or assumed."""

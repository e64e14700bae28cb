"""lvmdiag: diagnostics for latent vector models (next-chunk embedding predictors).

Importing lvmdiag never imports torch; only ``lvmdiag.train`` does.
"""

from lvmdiag.errors import InputError, LvmdiagError, LvmdiagWarning, RunDirError

__version__ = "0.1.0"

__all__ = ["InputError", "LvmdiagError", "LvmdiagWarning", "RunDirError", "__version__"]

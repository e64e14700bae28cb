"""One pass, any engine: the streaming protocol every analyzer follows, and the runners that drive it.

The data goes one way: source -> :class:`~lvmdiag.engine.block.Block` -> ``state.update`` (every
analyzer) -> ``merge`` -> ``finalize`` -> Result. :mod:`~lvmdiag.engine.runner` reads each block once
on this machine; :mod:`~lvmdiag.engine.dask_runner` turns parts of the input into Dask tasks and
tree-reduces their states. Heavy imports (dask, faiss) happen inside functions.
"""

from lvmdiag.engine.block import Block, Part
from lvmdiag.engine.protocol import Analyzer, State

__all__ = ["Analyzer", "Block", "Part", "State"]

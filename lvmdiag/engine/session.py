"""What one engine run sets up before the pass: the Dask client (if any) and the article labels.

Shared by ``lvmdiag data`` and the single commands run through the engine, so both hold one client
for the recovery and the pass, and both recover id-less shards on the workers.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping


@contextmanager
def engine_client(engine: str, scheduler: str | None) -> Iterator[Any]:
    """One Dask client for the whole run (article recovery and the pass), or None for the local engine."""
    if engine != "dask":
        yield None
        return
    from lvmdiag.engine.dask_runner import dask_client

    with dask_client(scheduler) as client:
        yield client


def engine_groups(loaded: Mapping[str, Any], client: Any, progress: Callable[[int, int], None] | None = None) -> Any:
    """Article labels of the splits; with a client and id-less shard directories the recovery runs on the workers.

    ``progress(done, total)`` ticks through the recovery's read of id-less inputs (before the pass's own ticks).
    """
    from lvmdiag.data.groups import resolve_groups
    from lvmdiag.engine.sources import ShardedSplit

    sources = list(loaded.values())
    recovery = None
    if (client is not None and any(s.article_ids is None for s in sources)
            and any(isinstance(s, ShardedSplit) for s in sources)):
        from lvmdiag.engine.dask_recovery import recover_on_workers

        recovery = recover_on_workers(sources, client, progress=progress)
    return resolve_groups(sources, recovery=recovery, progress=progress)

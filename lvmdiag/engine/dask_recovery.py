"""Article recovery for id-less shards on Dask: the two-round join of :mod:`lvmdiag.data.recover_join` as tasks.

Each shard is hashed on a worker and its chunk-slot keys stay there (17 bytes per slot) until both
rounds have used them. Round 1 sends each distinct window's (chunk, offset, window) keys to P bucket
tasks by chunk key, which find the branch chunks; round 2 links each shard's windows into fragments
(given every branch key) and sends (chunk, fragment) to the buckets, which return an edge wherever
a chunk is in two shards' fragments. Records move between tasks by ``key mod P`` (each piece's list
is cut by small pick tasks, the pattern of Dask's task-based shuffle), so no machine sees every key.

The client receives: per bucket its branch keys and three counts; per shard its fragments (smallest
chunk key, distinct-window count and key, rows: ~50 bytes each), one int64 code per window (which
becomes the article label the report needs anyway), and the windows with no usable chunk; the edges
(32 bytes per fragment that continues in another shard). Inputs that are not shard directories are
hashed on the client and enter the join as one piece each. Labels and every diagnostic equal
:func:`lvmdiag.data.recover.recover_articles` (tested on random shardings).
"""

from __future__ import annotations

import warnings
from concurrent.futures import CancelledError
from typing import Any, Callable, Sequence

from lvmdiag.data.recover import ArticleRecovery
from lvmdiag.errors import EngineError

#: most key buckets of the join (one per piece below this)
MAX_BUCKETS = 32


def _shard_piece(shard: Any) -> Any:
    """One shard's slot keys, on the worker that reads it (only the shard's path travels)."""
    from lvmdiag.data.recover import slot_keys
    from lvmdiag.data.recover_join import piece_keys

    keys, null = slot_keys(shard)
    return piece_keys(keys, null, shard.k + 1)


def _identity(x: Any) -> Any:
    return x


def _pick(items: Any, i: int) -> Any:
    return items[i]


def _n_null(piece: Any) -> int:
    return int(piece.null.sum())


def _pieces(sources: Sequence[Any]) -> list[tuple[int, Any]]:
    """(source index, shard or None) per piece, sources in order; None: the whole source, hashed on the client."""
    from lvmdiag.engine.sources import ShardedSplit

    out: list[tuple[int, Any]] = []
    for i, s in enumerate(sources):
        out += [(i, sh) for sh in s.shards] if isinstance(s, ShardedSplit) else [(i, None)]
    return out


def recover_on_workers(sources: Sequence[Any], client: Any, *, n_buckets: int | None = None, retries: int = 2,
                       progress: Callable[[int, int], None] | None = None) -> ArticleRecovery:
    """:func:`lvmdiag.data.recover.recover_articles` of ``sources`` with the shards' work on the workers.

    ``n_buckets``: key buckets of the join (default: one per piece, at most :data:`MAX_BUCKETS`).
    ``progress(done, total)``: windows hashed so far, as shards finish. A worker lost beyond the retries
    fails with one :class:`~lvmdiag.errors.EngineError`; nothing partial is returned.
    """
    import distributed

    from lvmdiag.data import recover_join as rj
    from lvmdiag.data.recover import check_same_shape, slot_keys

    sources = list(sources)
    check_same_shape(sources)
    pieces = _pieces(sources)
    width = sources[0].k + 1
    p_n = max(1, min(MAX_BUCKETS, len(pieces))) if n_buckets is None else int(n_buckets)
    total = sum(int(s.n) for s in sources)
    opts = {"pure": False, "retries": retries}
    keys: list[Any] = []
    held: list[Any] = []
    try:
        with warnings.catch_warnings():  # a client-side piece travels once, as a task's (recomputable) argument
            warnings.filterwarnings("ignore", message="Sending large graph")
            for i, shard in pieces:
                if shard is None:
                    keys.append(client.submit(_identity, rj.piece_keys(*slot_keys(sources[i]), width), **opts))
                else:
                    keys.append(client.submit(_shard_piece, shard, **opts))
        held = list(keys)
        rows_of = {k.key: int(sources[i].n if sh is None else sh.n) for k, (i, sh) in zip(keys, pieces)}
        rec1 = [client.submit(rj.branch_records, k, p_n, **opts) for k in keys]
        to1 = [[client.submit(_pick, r, b, **opts) for b in range(p_n)] for r in rec1]
        buckets = [client.submit(rj.branch_bucket, *[t[b] for t in to1], **opts) for b in range(p_n)]
        branch = client.submit(rj.all_branches, *buckets, **opts)
        frag = [client.submit(rj.piece_fragments, k, branch, p_n, **opts) for k in keys]
        summary = [client.submit(_pick, f, 0, **opts) for f in frag]
        recs = [client.submit(_pick, f, 1, **opts) for f in frag]
        to2 = [[client.submit(_pick, r, b, **opts) for b in range(p_n)] for r in recs]
        edges = [client.submit(rj.join_bucket, *[t[b] for t in to2], **opts) for b in range(p_n)]
        nulls = [client.submit(_n_null, k, **opts) for k in keys]
        held += rec1 + buckets + [branch] + frag + summary + recs + edges + nulls + [f for t in to1 + to2 for f in t]
        done = 0
        if progress is not None:
            progress(0, total)
        for fut in distributed.as_completed(keys):  # a tick per piece hashed
            if fut.status != "finished":
                fut.result()  # its error now, not after every other task
            done += rows_of[fut.key]
            if progress is not None:
                progress(done, total)
        got_buckets, got_summary, got_edges, got_nulls = client.gather([buckets, summary, edges, nulls])
    except (distributed.KilledWorker, CancelledError, OSError, TimeoutError) as exc:
        client.cancel(held)
        line = (str(exc).strip().splitlines() or [""])[0]
        raise EngineError(f"article recovery on Dask failed ({type(exc).__name__}: {line}); nothing partial is "
                          "reported. Rerun, or give the cluster more workers or memory.") from exc
    except BaseException:
        client.cancel(held)
        raise
    joined = rj.assemble(got_summary, got_edges)
    per_file = [sum(1 for i, _ in pieces if i == j) for j in range(len(sources))]
    return rj.joined_recovery([s.name for s in sources], per_file, joined, got_buckets, sum(got_nulls))

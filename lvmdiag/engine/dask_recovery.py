"""Article recovery for id-less shards on Dask: the two-round join of :mod:`lvmdiag.data.recover_join` as tasks.

Each shard is hashed on a worker and its slot keys stay there until round 2 has used them. Round 1
sends each distinct window's (chunk, offset, window) keys to P bucket tasks by chunk key, which find
the branch chunks; round 2 links each shard's windows into fragments (given every branch key) and
sends (chunk, fragment) to the buckets, which return a spanning forest of the fragments that share a
chunk across shards; forests merge in a tree. Records move between tasks by ``key mod P`` (each
piece's list is cut by small pick tasks, the pattern of Dask's task-based shuffle), so no machine
sees every key, and the client holds only the futures it gathers.

The buckets' edges reduce to a spanning forest in a tree, one task numbers the articles from the
per-fragment summaries (O(fragments): about one per article per shard for article-ordered shards, up
to one per window for shuffled ones), and each shard's task turns its window codes into labels. The
client receives the labels (8 bytes per window, which the engine needs anyway), each bucket's branch
keys and a few counts. Inputs that are not shard directories are hashed on the client and enter as
one piece each (a task argument: their keys pass through the scheduler). Labels and every diagnostic
equal :func:`lvmdiag.data.recover.recover_articles` (tested on random shardings).
"""

from __future__ import annotations

import warnings
from concurrent.futures import CancelledError
from typing import Any, Callable, Sequence

from lvmdiag.data.recover import ArticleRecovery
from lvmdiag.engine.dask_runner import Refused, identity, first_line, raise_if_failed, tree_reduce
from lvmdiag.errors import EngineError, LvmdiagError

#: most key buckets of the join (one per piece below this)
MAX_BUCKETS = 32


def _shard_piece(shard: Any) -> Any:
    """One shard's slot keys, on the worker that reads it (only the shard's path travels); a bad shard's
    error is returned (:class:`Refused`), not raised, so it is not read again by a retry."""
    from lvmdiag.data.recover import slot_keys
    from lvmdiag.data.recover_join import piece_keys

    try:
        keys, null = slot_keys(shard)
    except LvmdiagError as exc:
        return Refused(exc)
    return piece_keys(keys, null, shard.k + 1)


def _pick(items: Any, i: int) -> Any:
    return items[i]


def _labels(code: Any, labels: Any) -> Any:
    """A piece's article labels (a copy: a task never changes its inputs, which a retry would see)."""
    from lvmdiag.data.recover_join import window_labels

    return window_labels(code.copy(), labels)


def _of_piece(numbering: Any, p: int) -> Any:
    return numbering.of_piece(p)


def _counts(numbering: Any, *fragments: Any) -> tuple[Any, int]:
    """The numbering's scalars (its per-piece labels stay on the worker) and the null slots."""
    from dataclasses import replace

    return replace(numbering, fragment_labels=[], lonely_labels=[]), sum(f.n_null for f in fragments)


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
    ``progress(done, total)``: windows hashed so far, as pieces finish. A worker lost beyond the retries
    fails with one :class:`~lvmdiag.errors.EngineError`; nothing partial is returned. The client holds
    only the futures it will gather, so every intermediate is released on the workers once used.
    """
    import distributed

    from lvmdiag.data import recover_join as rj
    from lvmdiag.data.recover import check_same_shape, slot_keys

    sources = list(sources)
    check_same_shape(sources)
    pieces = _pieces(sources)
    width = sources[0].k + 1
    n_buckets = min(MAX_BUCKETS, len(pieces)) if n_buckets is None else rj.check_buckets(n_buckets)
    total = sum(int(s.n) for s in sources)
    opts = {"pure": False, "retries": retries}
    keys: list[Any] = [None] * len(pieces)
    wanted: list[Any] = []
    piece_of: dict[Any, tuple[int, str]] = {}  # task key -> (windows, name) of each piece
    try:
        for j, (_, shard) in enumerate(pieces):  # shards first: the workers hash them while the client hashes
            if shard is not None:
                keys[j] = client.submit(_shard_piece, shard, **opts)
        with warnings.catch_warnings():  # a client-side piece travels once, as a task's (recomputable) argument
            warnings.filterwarnings("ignore", message="Sending large graph")
            for j, (i, shard) in enumerate(pieces):
                if shard is None:
                    keys[j] = client.submit(identity, rj.piece_keys(*slot_keys(sources[i]), width), **opts)
        piece_of = {k.key: (sources[i].n if sh is None else sh.n, sources[i].name if sh is None else sh.path)
                    for k, (i, sh) in zip(keys, pieces)}
        # every intermediate below is referenced only by the tasks that use it
        round1 = [client.submit(rj.branch_records, k, n_buckets, **opts) for k in keys]
        buckets = [client.submit(rj.branch_bucket, *[client.submit(_pick, r, b, **opts) for r in round1], **opts)
                   for b in range(n_buckets)]
        branch = client.submit(rj.all_branches, *buckets, **opts)
        round2 = [client.submit(rj.piece_fragments, k, branch, n_buckets, **opts) for k in keys]
        codes = [client.submit(_pick, f, 0, **opts) for f in round2]
        fragments = [client.submit(_pick, f, 1, **opts) for f in round2]
        records = [client.submit(_pick, f, 2, **opts) for f in round2]
        joins = [client.submit(rj.join_bucket, *[client.submit(_pick, r, b, **opts) for r in records], **opts)
                 for b in range(n_buckets)]
        forest = tree_reduce(client, rj.spanning_forest, joins, **opts)
        numbering = client.submit(rj.number_articles, forest, *fragments, **opts)  # O(fragments), on a worker
        labels = [client.submit(_labels, c, client.submit(_of_piece, numbering, p, **opts), **opts)
                  for p, c in enumerate(codes)]
        summary = client.submit(_counts, numbering, *fragments, **opts)
        wanted = [*buckets, summary, *labels]
        del round1, branch, round2, codes, fragments, records, joins, forest, numbering
        done = 0
        if progress is not None:
            progress(0, total)
        for fut in distributed.as_completed(keys):  # a tick per piece hashed
            raise_if_failed(fut)  # a bad shard fails now (later tasks would only fail on it)
            done += piece_of[fut.key][0]
            if progress is not None:
                progress(done, total)
        keys = []  # the slot keys stay on the workers only while round 2 needs them
        got = client.gather(wanted)
    except (distributed.KilledWorker, CancelledError, OSError, TimeoutError) as exc:
        client.cancel(wanted + [k for k in keys if k is not None])
        where = piece_of.get(getattr(exc, "task", None))
        raise EngineError(f"article recovery on Dask failed ({type(exc).__name__}: {first_line(exc)})"
                          + (f" while hashing {where[1]}" if where else "") + "; nothing partial is reported. "
                          "Rerun, or give the cluster more workers or memory.") from exc
    except BaseException:
        client.cancel(wanted + [k for k in keys if k is not None])
        raise
    got_buckets, (numbering, n_null), piece_labels = got[:n_buckets], got[n_buckets], got[n_buckets + 1 :]
    del got
    per_file = [sum(1 for i, _ in pieces if i == j) for j in range(len(sources))]
    return rj.joined_recovery([s.name for s in sources], per_file, piece_labels, numbering, got_buckets, n_null)

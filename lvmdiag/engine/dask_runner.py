"""The Dask runner: every part is one task, states combine by a tree reduction of ``merge``, finalize on the client.

Built on ``distributed`` futures (the ``lvmdiag[dask]`` extra), imported lazily. The analyzers' plans
travel once (one task's argument, recomputable); each part is a task, and the progress callback ticks
as parts finish. Phase-0
parts (every split but train) are reduced first; the analyzers' ``prepare`` runs as one task on that
reduction (leakage builds its query sets there) and every phase-1 task depends on it, so each row is
still read once. Tasks are retried (``retries``) when a worker dies; the rows each task read are
counted and checked, so a lost part fails the run in one line instead of shrinking the sample.
"""

from __future__ import annotations

import os
import pickle
import warnings
from concurrent.futures import CancelledError
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from lvmdiag.engine.block import Part
from lvmdiag.engine.protocol import merge_split_states
from lvmdiag.engine.runner import RunSummary, check_rows, process_part, split_phase
from lvmdiag.errors import EngineError, InputError, LvmdiagError

ProgressCallback = Callable[[int, int], None]
#: parts merged per reduction task (a tree of this arity)
FAN_IN = 4
#: seconds to keep trying to reach a --scheduler address before failing in one line
CONNECT_TIMEOUT_S = 30


def _require() -> Any:
    try:
        import dask  # noqa: F401
        import distributed
    except ImportError:
        raise InputError("the dask engine needs dask and distributed: install lvmdiag[dask].") from None
    return distributed


@dataclass
class Refused:
    """An lvmdiag error raised in a task, returned rather than raised: distributed re-runs a task that raises
    (``retries``), and reading a bad shard again cannot help. The client raises ``error`` once it sees one."""

    error: LvmdiagError


def first_refusal(*items: Any) -> Refused | None:
    return next((x for x in items if isinstance(x, Refused)), None)


def _task(part: Part, analyzers: Sequence[Any], block_rows: int) -> tuple[dict, dict, int] | Refused:
    if isinstance(analyzers, Refused):
        return analyzers
    try:
        states, rows, blocks = process_part(part, analyzers, block_rows)
    except LvmdiagError as exc:
        return Refused(exc)
    return states, {part.split: rows}, blocks


def _combine(*items: tuple[dict, dict, int] | Refused) -> tuple[dict, dict, int] | Refused:
    """Merge task results in order (earlier rows first); a refusal passes through."""
    refused = first_refusal(*items)
    if refused is not None:
        return refused
    states, rows, blocks = items[0]
    rows = dict(rows)
    for st, r, b in items[1:]:
        states = merge_split_states(states, st)
        for k, v in r.items():
            rows[k] = rows.get(k, 0) + v
        blocks += b
    return states, rows, blocks


def _empty() -> tuple[dict, dict, int]:
    return {}, {}, 0


def tree_reduce(client: Any, fn: Callable[..., Any], items: list[Any], **submit: Any) -> Any:
    """One future: ``items`` (futures, in order) combined by ``fn`` tasks, FAN_IN at a time (``fn`` of
    ``fn``-results must be valid: a merge). A group of one passes through."""
    while len(items) > 1:
        groups = [items[i : i + FAN_IN] for i in range(0, len(items), FAN_IN)]
        items = [client.submit(fn, *g, **submit) if len(g) > 1 else g[0] for g in groups]
    return items[0]


def _tree(client: Any, items: list[Any], retries: int) -> Any:
    """One future: ``items`` (futures, in row order) merged by ``_combine`` tasks."""
    if not items:
        return client.submit(_empty, pure=False)
    return tree_reduce(client, _combine, items, pure=False, retries=retries)


def raise_if_failed(fut: Any) -> None:
    """A finished future's error now (rather than after every other task): raised in the task, or returned as
    a :class:`Refused` (fetched only then: the future's type is known without its value)."""
    if fut.status != "finished":
        fut.result()
    if fut.type is Refused:
        raise fut.result().error


def first_line(exc: BaseException) -> str:
    """An exception's first line (distributed's messages run over several)."""
    return (str(exc).strip().splitlines() or [""])[0]


def _cancel(client: Any, head: list[Any], pending: Any) -> None:
    """Cancel what is still running or queued after a failure (and drop our references to it)."""
    rest = list(pending.futures) if pending is not None else []
    if pending is not None:
        pending.clear()
    client.cancel(head + rest)


def describe_part(part: Part) -> str:
    """A part as a user can find it: split, rows and the file or shard it reads."""
    src = part.source
    where = getattr(src, "path", None) or getattr(src, "source", None)
    return f"{part.split!r} rows {part.start}-{part.start + part.n - 1}" + (f" of {where}" if isinstance(where, str) else "")


def identity(x: Any) -> Any:
    return x


def _prepare(analyzers: Sequence[Any], reduced: tuple[dict, dict, int] | Refused) -> list[Any] | Refused:
    if isinstance(reduced, Refused):
        return reduced
    states = reduced[0]
    return [a.prepare(states.get(a.name, {})) for a in analyzers]


def default_cluster() -> Any:
    """A LocalCluster sized to this machine: one single-threaded worker process per core."""
    distributed = _require()
    n = max(1, os.cpu_count() or 1)
    return distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)


def _refused(address: str) -> str | None:
    """Why a ``tcp://host:port`` address refuses connections right now, else None.

    distributed retries a refused connection until its timeout (30 s here); a refusal is certain at
    once, so it is reported at once. Anything else (no route, a slow network) is left to distributed.
    """
    import socket
    from urllib.parse import urlsplit

    if not address.startswith("tcp://"):
        return None
    try:
        parts = urlsplit(address)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host or not port:
        return None
    try:
        with socket.create_connection((host, port), timeout=5):
            return None
    except ConnectionRefusedError:
        return "connection refused"
    except OSError:
        return None


@contextmanager
def dask_client(scheduler: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: connected to ``scheduler``, or to a :func:`default_cluster` started here;
    closed (with the cluster) on exit."""
    distributed = _require()
    if scheduler:
        refused = _refused(scheduler)
        if refused:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({refused}: nothing listens there); start "
                             "`dask scheduler` there or leave --scheduler out for a local cluster.")
        try:
            client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except ValueError as exc:  # not an address at all (distributed raises before connecting)
            raise InputError(f"--scheduler {scheduler!r} is not a Dask scheduler address ({exc}); give one such "
                             "as tcp://host:8786.") from None
        except (OSError, TimeoutError) as exc:
            raise InputError(f"--scheduler {scheduler}: cannot connect ({exc}); start `dask scheduler` there "
                             "or leave --scheduler out for a local cluster.") from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = default_cluster()
    try:
        client = distributed.Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def run_dask(parts: Sequence[Part], analyzers: Sequence[Any], *, block_rows: int = 4096,
             scheduler: str | None = None, client: Any = None, retries: int = 2,
             progress: ProgressCallback | None = None) -> tuple[list[Any], dict[str, dict[str, Any]], RunSummary]:
    """Stream the parts as Dask tasks; same return value as :func:`lvmdiag.engine.runner.run_local`.

    ``client``: an existing ``distributed.Client``; else ``scheduler`` (an address such as
    ``tcp://host:8786``); else a :func:`default_cluster` started and closed here.
    """
    distributed = _require()
    if client is None:
        with dask_client(scheduler) as own:
            return run_dask(parts, analyzers, block_rows=block_rows, client=own, retries=retries, progress=progress)
    import time

    t0 = time.perf_counter()
    p0 = [p for p in parts if split_phase(analyzers, p.split) == 0]
    p1 = [p for p in parts if split_phase(analyzers, p.split) == 1]
    total, done, finished = sum(p.n for p in parts), 0, 0
    head: list[Any] = []  # the plan and the reductions; parts are held only by `pending` until they finish
    pending: Any = None
    part_of: dict[Any, str] = {}  # task key -> the part as a user can find it
    try:
        with warnings.catch_warnings():
            # the plans (split codes, folds, random features; tens of MB at 10^6 windows) travel once, as
            # one task's argument: a task, unlike scattered data, is recomputed if its worker dies
            warnings.filterwarnings("ignore", message="Sending large graph")
            plans = client.submit(identity, list(analyzers), pure=False, retries=retries)
        tasks0 = [client.submit(_task, p, plans, block_rows, pure=False, retries=retries) for p in p0]
        red0 = _tree(client, list(tasks0), retries)
        fut_prep = client.submit(_prepare, plans, red0, pure=False, retries=retries)
        tasks1 = [client.submit(_task, p, fut_prep, block_rows, pure=False, retries=retries) for p in p1]
        fut_red = _tree(client, [red0] + tasks1, retries)
        head = [plans, fut_prep, fut_red]
        rows_of = {t.key: p.n for t, p in zip(tasks0 + tasks1, p0 + p1)}
        part_of = {t.key: describe_part(p) for t, p in zip(tasks0 + tasks1, p0 + p1)}
        pending = distributed.as_completed(tasks0 + tasks1)
        del red0, tasks0, tasks1, plans  # hold no part's state here: each is released once merged
        if progress is not None:
            progress(0, total)
        fut = None
        for fut in pending:  # a tick per part as it finishes
            raise_if_failed(fut)  # a bad input fails now, with the error its reader raised
            finished += 1
            done += rows_of[fut.key]
            if progress is not None:
                progress(done, total)
        fut = None
        prepared_analyzers, reduced = fut_prep.result(), fut_red.result()
        refused = first_refusal(prepared_analyzers, reduced)
        if refused is not None:
            raise refused.error
        states, rows_read, n_blocks = reduced
    except (distributed.KilledWorker, CancelledError, OSError, TimeoutError) as exc:
        # workers lost beyond the retries (or the scheduler gone): say what finished, report nothing partial
        _cancel(client, head, pending)
        where = part_of.get(getattr(exc, "task", None))
        raise EngineError(
            f"the Dask run failed ({type(exc).__name__}: {first_line(exc)}"
            + (f"; the part lost was {where}" if where else "") + f") after {finished} of {len(p0) + len(p1)} parts "
            f"({done} of {total} windows) finished; no result is reported from a partial run. Rerun, or give the "
            "cluster more workers or memory."
        ) from exc
    except BaseException:
        _cancel(client, head, pending)  # a bad shard (InputError from a worker), a bug, an interrupt: stop the rest
        raise
    seconds = time.perf_counter() - t0
    check_rows(parts, rows_read)
    sizes = {name: len(pickle.dumps(per, protocol=pickle.HIGHEST_PROTOCOL)) for name, per in states.items()}
    return prepared_analyzers, states, RunSummary("dask", rows_read, len(parts), n_blocks, sizes, seconds)

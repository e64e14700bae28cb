"""The local runner: read every part's blocks once, feed every analyzer's state, merge, finalize.

Parts whose split some analyzer needs in phase 1 (train, for leakage) are read after every phase-0
part; between the phases each analyzer's ``prepare`` sees the phase-0 states. Rows read are counted
per split and checked against the parts' sizes, so a result never silently rests on fewer windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from lvmdiag.engine.block import Part
from lvmdiag.engine.protocol import merge_split_states
from lvmdiag.errors import InputError, LvmdiagError
from lvmdiag.results import Result

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class RunSummary(Result):
    """What the streaming phase read, for the report: windows per split and how the work was split."""

    engine: str
    rows_read: dict[str, int]
    n_parts: int
    n_blocks: int
    state_bytes: dict[str, int] = field(default_factory=dict)
    # wall time of the streaming phase (reads, updates, merges), finalize excluded; kept out of the JSON so the
    # same data and seed give byte-identical reports
    stream_seconds: float = field(default=0.0, metadata={"json": False})

    def to_markdown(self) -> str:
        rows = ", ".join(f"{k} {v}" for k, v in self.rows_read.items())
        shipped = ("; merged state shipped to the client: " + ", ".join(f"{k} {_size(v)}" for k, v in
                                                                         self.state_bytes.items())
                   if self.state_bytes else "")
        return (f"One streaming pass ({self.engine} engine, {self.n_parts} part(s), {self.n_blocks} block(s)) fed every "
                f"section; windows read: {rows}{shipped}. Each section states the windows its statistics used (zero or "
                "non-finite vectors excluded); no section reads a vector again after the pass.")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 2**10:.0f} kB"


def split_phase(analyzers: Sequence[Any], split: str) -> int:
    return max((a.phase(split) for a in analyzers), default=0)


def check_rows(parts: Sequence[Part], rows_read: Mapping[str, int]) -> None:
    """Every row of every part was read (a lost task or a short shard is an error, not a smaller sample)."""
    expected: dict[str, int] = {}
    for p in parts:
        expected[p.split] = expected.get(p.split, 0) + p.n
    bad = {s: (rows_read.get(s, 0), n) for s, n in expected.items() if rows_read.get(s, 0) != n}
    if bad:
        desc = ", ".join(f"{s}: {got} of {n} windows" for s, (got, n) in bad.items())
        raise InputError(f"the streaming pass did not read every window ({desc}); rerun (a task or shard was lost).")


def process_part(part: Part, analyzers: Sequence[Any], block_rows: int,
                 tick: Callable[[int], None] | None = None) -> tuple[dict[str, dict[str, Any]], int, int]:
    """States of one part for every analyzer: one read of its blocks. Returns (states, rows, blocks)."""
    states = {a.name: a.new_state(part) for a in analyzers}
    rows = blocks = 0
    for block in part.blocks(block_rows):
        for st in states.values():
            st.update(block)
        rows += block.n
        blocks += 1
        if tick is not None:
            tick(block.n)
    return {name: {part.split: st} for name, st in states.items()}, rows, blocks


def run_local(parts: Sequence[Part], analyzers: Sequence[Any], *, block_rows: int = 4096,
              progress: ProgressCallback | None = None) -> tuple[list[Any], dict[str, dict[str, Any]], RunSummary]:
    """Stream every part once on this machine.

    Returns (the analyzers as prepared for finalize, merged states ``{analyzer: {split: state}}``, summary).
    """
    import time

    t0 = time.perf_counter()
    total = sum(p.n for p in parts)
    done = [0]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    merged: dict[str, dict[str, Any]] = {a.name: {} for a in analyzers}
    rows_read: dict[str, int] = {}
    n_blocks = 0
    active = list(analyzers)
    for phase in (0, 1):
        if phase == 1:
            active = [a.prepare(merged[a.name]) for a in active]
        for part in (p for p in parts if split_phase(analyzers, p.split) == phase):
            st, rows, blocks = process_part(part, active, block_rows, tick)
            merged = merge_split_states(merged, st)
            rows_read[part.split] = rows_read.get(part.split, 0) + rows
            n_blocks += blocks
    check_rows(parts, rows_read)
    return active, merged, RunSummary("local", rows_read, len(parts), n_blocks,
                                      stream_seconds=time.perf_counter() - t0)


#: sections whose finalize needs the most memory beyond their state, finalized last (after the others' states are freed)
FINALIZE_LAST = ("direction", "divergence")


def finalize_all(analyzers: Sequence[Any], states: Mapping[str, Mapping[str, Any]], sources: Mapping[str, Any],
                 *, release: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
    """Each analyzer's Result; an analyzer that cannot finish (too few articles, module missing) is skipped with why.

    ``release``: the caller hands over ``analyzers`` (a list) and ``states`` (a dict): each analyzer and its
    state are dropped from them once finalized, and the sections of :data:`FINALIZE_LAST` go last, so the
    heaviest finalize runs with the other sections' states already freed (the peak of a 10^6-window run
    was a finalize on top of every state). The results are the same in any order.
    """
    results: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    names = [a.name for a in analyzers]
    order = sorted(range(len(analyzers)), key=lambda i: FINALIZE_LAST.index(analyzers[i].name)
                   if analyzers[i].name in FINALIZE_LAST else -1) if release else range(len(analyzers))
    for i in order:
        a = analyzers[i]
        try:
            results[a.name] = a.finalize(states[a.name], sources)
        except ImportError as exc:
            skipped[a.name] = f"module unavailable: {exc}"
        except LvmdiagError as exc:
            skipped[a.name] = str(exc)
        if release:
            analyzers[i] = None  # type: ignore[index]
            states.pop(a.name, None)  # type: ignore[attr-defined]
            del a
    return {n: results[n] for n in names if n in results}, skipped  # in the analyzers' order

"""The analyzer protocol (the torchmetrics idea, made picklable for Dask).

An :class:`Analyzer` is planned on the client (article codes, folds, random features, seeds are fixed
before any block is read) and is then immutable. ``new_state(part)`` makes an empty state for one part
of one split; ``state.update(block)`` folds a block in; ``a.merge(b)`` combines the states of two
parts of the same split (``a``'s rows precede ``b``'s; sums add, per-window arrays concatenate, an
article cut across parts is matched by its code); ``finalize(states, sources)`` runs the inference on
the client from the merged per-split states and returns the analyzer's Result.

Two-phase analyzers (leakage: train chunks are searched against the other splits' chunks) declare
``phase(split)``; the runner reads every phase-0 part first, calls ``prepare(phase0_states)`` to get
the analyzer that phase-1 parts use, and still reads every row once.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

from lvmdiag.engine.block import Block, Part


@runtime_checkable
class State(Protocol):
    """Mergeable, picklable sufficient statistics of one analyzer over some rows of one split."""

    def update(self, block: Block) -> None: ...

    def merge(self, other: Any) -> Any: ...


class Analyzer(Protocol):
    """A planned analysis: makes states, and turns merged states into a Result."""

    name: str

    def new_state(self, part: Part) -> State: ...

    def phase(self, split: str) -> int: ...

    def prepare(self, states: Mapping[str, State]) -> "Analyzer": ...

    def finalize(self, states: Mapping[str, State], sources: Mapping[str, Any]) -> Any: ...


class SinglePhase:
    """Mixin for analyzers whose every split is read in phase 0."""

    def phase(self, split: str) -> int:
        return 0

    def prepare(self, states: Mapping[str, State]) -> "SinglePhase":
        return self


def merge_split_states(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Merge ``{analyzer: {split: state}}`` maps; ``a`` holds the earlier rows of any split both contain."""
    out = {name: dict(per) for name, per in a.items()}
    for name, per in b.items():
        into = out.setdefault(name, {})
        for split, st in per.items():
            into[split] = into[split].merge(st) if split in into else st
    return out

"""One call for analyzers: which article (resampling group) each window belongs to, in every file.

Order of preference: article ids given in every file; else articles recovered from shared chunk
vectors (stride-1 files); else contiguous blocks of rows (a block bootstrap, weaker: it assumes
windows far apart in the file are independent). The method is named in the result so reports say
which one was used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import numpy as np

from lvmdiag.data.recover import ArticleRecovery, recover_articles
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import InputError
from lvmdiag.results import Result

GroupMethod = Literal["given", "recovered", "contiguous-blocks"]

#: recovery is used only when at least this share of windows joined another window
MIN_SHARE_LINKED = 0.5
#: target number of contiguous blocks per file when falling back
TARGET_BLOCKS = 200


@dataclass(frozen=True)
class GroupAssignment(Result):
    """Group (article) label of every window of every input.

    Attributes
    ----------
    labels : one (N_f,) int64 array per input; codes are dense over all inputs and the same code is
        the same group in every input (contiguous blocks are never shared between inputs)
    method : "given", "recovered" or "contiguous-blocks"
    n_groups : number of distinct groups over all inputs
    note : one sentence for the report saying how groups were obtained
    recovery : the article recovery, when one was run
    block_size : rows per block for "contiguous-blocks", else None
    """

    labels: list[np.ndarray] = field(repr=False)
    method: GroupMethod
    n_groups: int
    note: str
    recovery: ArticleRecovery | None = None
    block_size: int | None = None

    @property
    def n_groups_per_input(self) -> list[int]:
        return [int(np.unique(lab).size) for lab in self.labels]

    @property
    def n_shared_groups(self) -> int:
        """Groups that occur in more than one input (shared articles across splits)."""
        seen = np.zeros(self.n_groups, dtype=np.int64)
        for lab in self.labels:
            seen[np.unique(lab)] += 1
        return int((seen > 1).sum())

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (per-window labels left out)."""
        return {
            "method": self.method,
            "n_groups": self.n_groups,
            "n_groups_per_input": self.n_groups_per_input,
            "n_shared_groups": self.n_shared_groups,
            "note": self.note,
            "block_size": self.block_size,
            "recovery": None if self.recovery is None else self.recovery.to_dict(),
        }

    def to_markdown(self) -> str:
        text = f"Groups for resampling: **{self.method}** ({self.n_groups} groups). {self.note}"
        if self.recovery is not None:
            text += "\n\n" + self.recovery.to_markdown()
        return text


def default_block_size(n_rows: int, k: int) -> int:
    """Rows per block giving about ``TARGET_BLOCKS`` blocks, but at least K + 1 rows."""
    return int(max(k + 1, int(np.ceil(n_rows / TARGET_BLOCKS))))


def resolve_groups(
    seqsets: Sequence[SequenceSet],
    *,
    block_size: int | None = None,
    recover: bool = True,
    progress: Callable[[int, int], None] | None = None,
    recovery: ArticleRecovery | None = None,
) -> GroupAssignment:
    """Group labels for every window of every input: given ids, recovered articles, or row blocks.

    Parameters
    ----------
    seqsets : the inputs analysed together (train, val, ood, ...)
    block_size : rows per contiguous block in the fallback (default: about 200 blocks per file,
        at least K + 1 rows)
    recover : try article recovery when ids are missing (off: go straight to blocks)
    progress : optional ``(done, total)`` callback for the recovery pass
    recovery : the recovery of these inputs computed elsewhere (on Dask workers:
        :func:`lvmdiag.engine.dask_recovery.recover_on_workers`); then no vector is read here

    Returns
    -------
    GroupAssignment (labels per input, method, n_groups, note, recovery).
    """
    seqsets = list(seqsets)
    if not seqsets:
        raise InputError("resolve_groups needs at least one sequence file.")
    if block_size is not None and block_size < 1:
        raise InputError(f"block_size must be >= 1; got {block_size}.")
    if all(s.article_ids is not None for s in seqsets):
        return _from_ids(seqsets)
    reason = "no article ids"
    if recover:
        if recovery is None:
            recovery = recover_articles(seqsets, progress=progress)
        if recovery.share_linked >= MIN_SHARE_LINKED:
            return GroupAssignment(
                labels=recovery.labels,
                method="recovered",
                n_groups=recovery.n_articles,
                note=recovery.note + ".",
                recovery=recovery,
            )
        reason = (
            f"no article ids, and recovery linked only {100 * recovery.share_linked:.1f}% of windows "
            "(the files do not look like stride-1 windows)"
        )
    missing = [s.name for s in seqsets if s.article_ids is None]
    if len(missing) < len(seqsets):
        reason = f"article ids missing in {', '.join(missing)}" + ("" if recover else " and recovery was off")
    labels, offset, sizes = [], 0, []
    for s in seqsets:
        size = block_size or default_block_size(s.n, s.k)
        sizes.append(size)
        lab = np.arange(s.n, dtype=np.int64) // size + offset
        labels.append(lab)
        offset = int(lab.max()) + 1 if s.n else offset
    size_text = str(sizes[0]) if len(set(sizes)) == 1 else "/".join(map(str, sizes))
    return GroupAssignment(
        labels=labels,
        method="contiguous-blocks",
        n_groups=offset,
        note=(
            f"{reason}; resampling uses {offset} contiguous blocks of {size_text} rows, which assumes windows "
            "far apart in a file are independent (add article ids for article-level intervals)."
        ),
        recovery=recovery,
        block_size=sizes[0],
    )


def _from_ids(seqsets: list[SequenceSet]) -> GroupAssignment:
    """Dense codes over the union of given ids (ids from one store are comparable across files)."""
    raw = [np.asarray(s.article_ids, dtype=np.int64) for s in seqsets]
    uniq, inverse = np.unique(np.concatenate(raw), return_inverse=True)
    inverse = inverse.reshape(-1)
    labels, start = [], 0
    for r in raw:
        labels.append(inverse[start : start + r.size].astype(np.int64))
        start += r.size
    sources = {s.id_source for s in seqsets}
    method: GroupMethod = "recovered" if sources == {"recovered"} else "given"
    assignment = GroupAssignment(labels=labels, method=method, n_groups=int(uniq.size), note="")
    shared = assignment.n_shared_groups
    note = (
        f"article ids {'read from the files' if method == 'given' else 'recovered earlier'}: "
        f"{uniq.size} articles"
        + (f", {shared} of them in more than one file" if len(seqsets) > 1 else "")
        + "."
    )
    return GroupAssignment(labels=labels, method=method, n_groups=int(uniq.size), note=note)

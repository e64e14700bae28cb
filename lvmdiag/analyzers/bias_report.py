"""What ``lvmdiag bias`` reports: temporal bias per split (and differences), plus the direction test.

Δ is symmetric under time reversal, so a bias report without a test that *can* see direction
invites the "forward-biased data" misreading; the direction section answers that question.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from lvmdiag.analyzers.direction import DirectionResult, analyze_direction
from lvmdiag.analyzers.temporal_bias import BiasComparison, BiasResult, analyze_bias, compare_bias
from lvmdiag.data.groups import resolve_groups
from lvmdiag.data.sequences import SequenceSet
from lvmdiag.results import Result

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class BiasReport(Result):
    """Temporal bias (one split or a comparison) and, optionally, the direction test on the same splits."""

    bias: BiasResult | BiasComparison
    direction: DirectionResult | None

    def to_markdown(self) -> str:
        text = self.bias.to_markdown()
        if self.direction is not None:
            text = text.rstrip("\n") + "\n\n" + self.direction.to_markdown()
        return text

    def to_dict(self) -> dict[str, Any]:
        # the bias fields stay at the top level (the JSON of a bias-only run keeps its shape)
        out = self.bias.to_dict()
        out["direction"] = None if self.direction is None else self.direction.to_dict()
        return out


def analyze_bias_report(
    splits: Mapping[str, SequenceSet],
    *,
    direction: bool = True,
    n_resamples: int = 1000,
    n_permutations: int | str = "auto",
    rng: np.random.Generator | int | None = 0,
    block_rows: int = 8192,
    progress: ProgressCallback | None = None,
) -> BiasReport:
    """Bias for ``splits`` ("train" first; one split gives a BiasResult, several a BiasComparison) plus direction.

    Parameters
    ----------
    splits : split name -> SequenceSet, the reference split "train" among them
    direction : also run :func:`lvmdiag.analyzers.direction.analyze_direction` (article-flip test)
    n_resamples : bootstrap resamples of the bias statistics' intervals
    n_permutations : cap on the permutations of the bias differences and the article flips of the
        direction test, or "auto" (see :mod:`lvmdiag.stats.sequential`)
    rng, block_rows, progress : as in :func:`lvmdiag.analyzers.temporal_bias.analyze_bias`

    Returns
    -------
    BiasReport with fields ``bias`` and ``direction`` (None when ``direction`` is False)
    """
    names = list(splits)
    assignment = resolve_groups([splits[n] for n in names])  # resolved once, used by both analyses
    bias_progress, direction_progress = progress, None
    if progress is not None and direction:  # one bar: bias fills the first half, direction the second
        bias_progress, direction_progress = _share(progress, 0), _share(progress, 1)
    if len(names) == 1:
        seqs = splits[names[0]]
        bias: BiasResult | BiasComparison = analyze_bias(
            seqs, groups=assignment.labels[0], group_method=assignment.method, group_note=assignment.note,
            n_resamples=n_resamples, rng=rng, block_rows=block_rows, progress=bias_progress,
        )
    else:
        bias = compare_bias(
            dict(splits), groups=dict(zip(names, assignment.labels)), group_method=assignment.method,
            group_note=assignment.note, n_resamples=n_resamples, n_permutations=n_permutations,
            rng=rng, block_rows=block_rows, progress=bias_progress,
        )
    arrow = None
    if direction:
        arrow = analyze_direction(dict(splits), groups=assignment, n_permutations=n_permutations,
                                  rng=rng, block_rows=block_rows, progress=direction_progress)
    return BiasReport(bias=bias, direction=arrow)


def _share(progress: ProgressCallback, part: int, parts: int = 2, unit: int = 1000) -> ProgressCallback:
    """Map a sub-task's ``(done, total)`` onto its share ``part`` of one bar of ``parts * unit`` steps."""
    def cb(done: int, total: int) -> None:
        if total:
            progress(part * unit + int(unit * min(done, total) / total), parts * unit)
    return cb

"""Engine analyzers for temporal bias, direction and divergence: thin wrappers over the analyzers' own code.

Each wraps the existing per-block accumulate code in a picklable state and calls the analyzer's own
finalize function, so a result through the engine is the one-shot function's result.

What cannot be streamed exactly, and what is done instead:

- direction keeps per-article sums and a bottom-k sample of ``max_windows`` classifier rows by a hash
  of the row (``DirectionAccumulator``): bounded whatever N, and the same sample however the data are
  sharded (the one-shot function uses the same accumulator).
- divergence's classifier works from the merged per-article sums and per-fold Gram matrices alone
  (the held-out scores' standardised mean difference is exact from them; see
  ``lvmdiag.stats.classifier_test.held_out_auc``), so no test re-reads the rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from lvmdiag.engine.block import Block, Part
from lvmdiag.engine.protocol import SinglePhase

_NOOP: Callable[[int], None] = lambda n: None  # noqa: E731


# ----------------------------------------------------------------------------------------------
# temporal bias


class BiasPartState:
    """TemporalBiasState fed by Blocks (per-article sums; merge is addition)."""

    def __init__(self, k: int, d: int) -> None:
        from lvmdiag.analyzers.bias_state import TemporalBiasState

        self.inner = TemporalBiasState(k)
        self.inner._set_shape(k, d)

    def update(self, block: Block) -> None:
        self.inner.update(block.contexts, block.targets, block.labels, block.valid, start=block.start)

    def merge(self, other: "BiasPartState") -> "BiasPartState":
        self.inner.merge(other.inner)
        return self


@dataclass
class BiasAnalyzer(SinglePhase):
    """Plan of :func:`lvmdiag.analyzers.temporal_bias.compare_bias` (labels must be dense codes)."""

    reference: str
    k: int
    d: int
    group_method: str
    group_note: str
    n_resamples: int
    level: float = 0.95
    seed: Any = 0
    name: str = "bias"
    n_permutations: int | str = "auto"  # cap of the curtailed permutation tests (lvmdiag.stats.sequential)
    alpha: float = 0.05

    def new_state(self, part: Part) -> BiasPartState:
        return BiasPartState(self.k, self.d)

    def finalize(self, states: Mapping[str, BiasPartState], sources: Mapping[str, Any]) -> Any:
        from lvmdiag.analyzers.temporal_bias import _iv, compare_states, name_comparison
        from lvmdiag.stats.resampling import as_rng

        _iv(self.n_resamples, self.level, 1, self.group_method)
        names = [self.reference] + [n for n in states if n != self.reference]
        return name_comparison(compare_states({n: states[n].inner for n in names},
                              {n: getattr(sources[n], "source", n) for n in names}, reference=self.reference,
                              group_method=self.group_method, group_note=self.group_note,
                              n_resamples=self.n_resamples, level=self.level, rng=as_rng(self.seed),
                              n_permutations=self.n_permutations, alpha=self.alpha), sources)


# ----------------------------------------------------------------------------------------------
# direction


@dataclass
class DirectionPartState:
    """A split part's :class:`~lvmdiag.analyzers.direction_pass.DirectionAccumulator` (bounded; merge adds)."""

    acc: Any

    def update(self, block: Block) -> None:  # block.labels: the global article codes (>= 0) of the rows
        valid = np.ones(block.n, bool) if block.valid is None else np.asarray(block.valid, bool)
        self.acc.update(block.start, block.contexts, block.targets, valid, block.labels)

    def merge(self, other: "DirectionPartState") -> "DirectionPartState":
        self.acc.merge(other.acc)
        return self


@dataclass
class DirectionAnalyzer(SinglePhase):
    """Plan of :func:`lvmdiag.analyzers.direction.analyze_direction` (seed streams drawn as it draws them)."""

    splits: list[str]
    reference: str
    k: int
    d: int
    method: str
    note: str
    n_permutations: int | str
    n_bootstrap: int
    n_folds: int = 5
    ridge: float = 1.0
    max_windows: int | None = 100_000
    alpha: float = 0.05
    seed: Any = 0
    name: str = "direction"

    def __post_init__(self) -> None:
        from lvmdiag.analyzers.direction import direction_seeds
        from lvmdiag.stats.resampling import as_rng

        # drawn once, as analyze_direction draws them: the sample salts (first seed) and the finalize streams
        self._seeds = direction_seeds(as_rng(self.seed), list(self.splits))

    def new_state(self, part: Part) -> DirectionPartState:
        from lvmdiag.analyzers.direction_pass import DirectionAccumulator

        salt = int(self._seeds[part.split][0])
        return DirectionPartState(DirectionAccumulator(self.k, self.d, self.max_windows, salt))

    def finalize(self, states: Mapping[str, DirectionPartState], sources: Mapping[str, Any]) -> Any:
        from lvmdiag.analyzers.direction import finalize_direction
        from lvmdiag.errors import InputError
        from lvmdiag.stats.sequential import resolve_cap

        resolve_cap(self.n_permutations, 1, self.alpha)  # "auto" or a positive integer
        if self.n_bootstrap < 1:
            raise InputError(f"n_bootstrap must be >= 1; got {self.n_bootstrap}.")
        streams = {name: [np.random.default_rng(int(x)) for x in self._seeds[name]] for name in self.splits}
        stats = {name: states[name].acc.finish() for name in self.splits}
        method, gnote = self.method, self.note
        result = finalize_direction(stats, streams, ref=self.reference, k=self.k, d=self.d, method=method,
                                    gnote=gnote, n_permutations=self.n_permutations, n_bootstrap=self.n_bootstrap,
                                    n_folds=self.n_folds, ridge=self.ridge, alpha=self.alpha,
                                    tick=_NOOP, done=[0])
        return result


# ----------------------------------------------------------------------------------------------
# divergence


class DivergencePartState:
    """SplitAccumulator of one part; parts of a split merge into a SplitState by article code."""

    def __init__(self, acc: Any, part_start: int) -> None:
        self.acc, self.part_start, self.state = acc, part_start, None

    def update(self, block: Block) -> None:
        valid = np.ones(block.n, bool) if block.valid is None else np.asarray(block.valid, bool)
        # the block's chunk keys are computed once and shared with validation and leakage
        self.acc.update(block.start - self.part_start, block.contexts, block.targets, valid,
                        block.chunk_keys[:, : block.contexts.shape[1]])

    def split_state(self) -> Any:
        if self.state is None:
            self.state, self.acc = self.acc.finish(), None
        return self.state

    def merge(self, other: "DivergencePartState") -> "DivergencePartState":
        merged = DivergencePartState(None, self.part_start)
        merged.state = self.split_state().merge(other.split_state())
        return merged

    def __getstate__(self) -> dict:
        self.split_state()  # ship the compact SplitState, not the block lists
        return self.__dict__


@dataclass
class DivergenceAnalyzer(SinglePhase):
    """Plan of :func:`lvmdiag.analyzers.divergence.analyze_divergence`: folds, random features, codes fixed.

    Build with :func:`plan_divergence_analyzer`. ``root`` seeds finalize's named streams as the one-shot
    function's plan does, so finalize draws the same permutations.
    """

    names: list[str]
    split_codes: dict[str, np.ndarray]
    fold_of_article: np.ndarray
    features: dict
    bandwidths: dict
    m_used: int
    grouping: str
    d: int
    k: int
    root: int
    n_permutations: int | str
    n_bootstrap: int
    rff_features: int = 512
    n_folds: int = 5
    ridge: float = 1e-2
    alpha: float = 0.05
    sample_rates: dict = field(default_factory=dict)  # split -> (article rate, per-window rate): divergence.sample_rates
    sample_keys: dict = field(default_factory=dict)  # split -> key each article is sampled by: divergence_pass.sample_keys
    name: str = "divergence"

    def new_state(self, part: Part) -> DivergencePartState:
        from lvmdiag.analyzers.divergence_pass import SplitAccumulator

        codes = self.split_codes[part.split][part.start : part.start + part.n]
        return DivergencePartState(SplitAccumulator(part.split, codes, self.fold_of_article, self.features,
                                                    self.n_folds, self.d, self.k, row_offset=part.start,
                                                    sample_rate=self.sample_rates.get(part.split, (1.0, 1.0))[1],
                                                    article_rate=self.sample_rates.get(part.split, (1.0, 1.0))[0],
                                                    sample_key=self.sample_keys.get(part.split)),
                                   part.start)

    def finalize(self, states: Mapping[str, DivergencePartState], sources: Mapping[str, Any]) -> Any:
        from lvmdiag.analyzers.divergence import finalize_divergence

        return finalize_divergence(
            [states[n].split_state() for n in self.names], [sources[n] for n in self.names], self.names,
            [self.split_codes[n] for n in self.names], self.fold_of_article, self.bandwidths, self.m_used,
            self.grouping, n_permutations=self.n_permutations, n_bootstrap=self.n_bootstrap,
            rff_features=self.rff_features, n_folds=self.n_folds, ridge=self.ridge, alpha=self.alpha, root=self.root)


def plan_divergence_analyzer(sources: Mapping[str, Any], groups: Any, reference: str, *, n_permutations: int | str,
                             n_bootstrap: int, alpha: float, seed: Any, rff_features: int = 512,
                             bandwidth_subsample: int = 1000, n_folds: int = 5, ridge: float = 1e-2,
                             window_cap: int | None | str = "default",
                             article_cap: int | None | str = "default") -> DivergenceAnalyzer:
    """Plan divergence as :func:`analyze_divergence` does before its pass (same draws from ``seed``)."""
    from lvmdiag.analyzers.divergence import _resolve_labels, plan_divergence, sample_rates
    from lvmdiag.analyzers.divergence_pass import ARTICLE_CAP, WINDOW_CAP, sample_keys

    window_cap = WINDOW_CAP if window_cap == "default" else window_cap
    article_cap = ARTICLE_CAP if article_cap == "default" else article_cap
    from lvmdiag.errors import InputError
    from lvmdiag.stats.resampling import as_rng

    if reference not in sources or len(sources) < 2:
        raise InputError(f"divergence compares every split to {reference!r}; got splits {sorted(sources)}.")
    from lvmdiag.stats.sequential import resolve_cap

    resolve_cap(n_permutations, 1, alpha)  # "auto" or a positive integer
    if n_bootstrap < 1:
        raise InputError(f"n_bootstrap must be >= 1; got {n_bootstrap}.")
    names = [reference] + [n for n in sources if n != reference]
    ordered = [sources[n] for n in names]
    labels, grouping = _resolve_labels(ordered, groups)
    fold_of_article, split_codes, features, bandwidths, m_used, root = plan_divergence(
        ordered, names, labels, n_folds, rff_features, bandwidth_subsample, as_rng(seed))
    return DivergenceAnalyzer(
        names=names, split_codes=dict(zip(names, split_codes)),
        fold_of_article=fold_of_article, features=features, bandwidths=bandwidths, m_used=m_used,
        grouping=grouping, d=ordered[0].d, k=ordered[0].k, root=root,
        n_permutations=n_permutations, n_bootstrap=n_bootstrap, rff_features=rff_features, n_folds=n_folds,
        ridge=ridge, alpha=alpha,
        sample_rates={n: sample_rates(s.n, int(np.unique(c).size), window_cap, article_cap)
                      for n, s, c in zip(names, ordered, split_codes)},
        sample_keys={n: sample_keys(c, fold_of_article.size) for n, c in zip(names, split_codes)})

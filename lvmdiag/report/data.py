"""Optional data evidence for a run report: the run's data files, the trivial baselines on them, and
the data analyzers' verdicts, reduced to what the detectors take.

Everything here is optional: when no data is readable the report still runs and says why (e.g. the
config's ``val_npz`` does not exist on this machine). Data paths come from ``train=``/``val=``
arguments or from the config (``train_npz``, ``val_npz``; relative paths are tried against the
current directory, then the run directory). Explicit paths that do not exist are an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from lvmdiag.errors import InputError, LvmdiagError
from lvmdiag.report.detectors.baselines import BaselineMetrics, from_baselines_json, from_bias_result
from lvmdiag.report.detectors.data_evidence import DataSignal
from lvmdiag.report.findings import Evidence
from lvmdiag.report.history import RunHistory
from lvmdiag.results import Estimate, Result, fmt

ProgressCallback = Callable[[int, int], None]
#: analyses run when data is readable; "divergence" and "direction" (permutation tests) are opt-in
DEFAULT_ANALYSES = ("bias", "leakage")
ANALYSES = ("bias", "leakage", "divergence", "direction")


@dataclass(frozen=True)
class BiasSummary(Result):
    """Forward-bias Δ = cos(c_last, t) - cos(c_0, t) and adjacent coherence of one split's data."""

    split: str
    n_windows: int
    delta: Estimate
    adjacent_coherence: Estimate
    group_method: str

    def to_markdown(self) -> str:
        return f"{self.split}: Δ {self.delta.to_markdown()} over {self.n_windows} windows ({self.group_method})"


@dataclass(frozen=True)
class DataContext(Result):
    """What the report knows about the run's data.

    Attributes
    ----------
    paths : split -> the data path used (None when none was readable)
    notes : why data was not used, which analyzers were unavailable, where baselines came from
    baselines : trivial-predictor metrics per split (from ``baselines.json`` or the bias analyzer)
    bias : Δ summaries per split (when the bias analyzer ran)
    signals : leakage / divergence / direction signals for the data-evidence detector
    """

    paths: dict[str, str | None]
    notes: tuple[str, ...] = ()
    baselines: tuple[BaselineMetrics, ...] = ()
    bias: tuple[BiasSummary, ...] = ()
    signals: tuple[DataSignal, ...] = ()

    def to_markdown(self) -> str:
        return "\n".join(f"- {n}" for n in self.notes)


def resolve_data_paths(history: RunHistory, train: str | Path | None, val: str | Path | None) -> tuple[dict[str, Path | None], list[str]]:
    """Pick the data file per split: explicit argument, else the config key, else None (with a note)."""
    paths: dict[str, Path | None] = {}
    notes: list[str] = []
    run_dir = Path(history.run_dir)
    for split, given in (("train", train), ("val", val)):
        if given is not None:
            p = Path(given)
            if not p.exists():
                raise InputError(f"the {split} data {p} does not exist; check the path (--{split} / {split}=).")
            paths[split] = p
            configured = history.config.get(f"{split}_npz")
            if configured and Path(configured).name != p.name:  # the run's metrics came from another file
                notes.append(f"the run's config names {split}_npz = '{configured}' but {p} was given: the data "
                             f"evidence and trivial baselines describe {p.name}, while the run's {split} metrics "
                             f"were measured on {Path(configured).name}; compare them only if both hold the same data.")
            continue
        configured = history.config.get(f"{split}_npz")
        if not configured:
            paths[split] = None
            notes.append(f"no {split} data: the config has no {split}_npz and --{split} was not given.")
            continue
        tried = [Path(configured)] if Path(configured).is_absolute() else [Path(configured), run_dir / configured]
        found = next((t for t in tried if t.exists()), None)
        paths[split] = found
        if found is None:
            notes.append(f"config {split}_npz = '{configured}' does not exist here (looked in "
                         f"{' and '.join(str(t) for t in tried)}); pass --{split} PATH to use that data.")
    return paths, notes


def _bias_summary(result: Any, split: str) -> BiasSummary:
    return BiasSummary(split, int(result.n_windows), result.delta, result.adjacent_coherence, str(result.group_method))


def _leakage_signal(result: Any, split: str) -> DataSignal | None:
    rows = [s for s in result.splits if s.split == split]
    if not rows:
        return None
    s = rows[0]
    evidence = [Evidence(f"{split} windows sharing a chunk with train", f"{s.windows_shared_chunk} / {s.n_windows} ({s.share_shared_chunk:.1%})"),
                Evidence(f"{split} windows with a near-duplicate chunk (cos >= {result.threshold:g})",
                         f"{s.windows_near_chunk} / {s.n_windows} ({s.share_near_chunk:.1%})"),
                Evidence(f"{split} windows affected in total", f"{s.windows_affected} / {s.n_windows} ({s.share_affected:.1%})")]
    if s.n_shared_articles is not None:
        ids_only = f" ({s.n_id_only_articles} share the id only, no content)" if s.shares_ids_only else ""
        evidence.append(Evidence(f"{split} articles also in train", f"{s.n_shared_articles} / {s.n_articles}{ids_only}"))
    summary = (f"{s.share_affected:.1%} of {split} windows share chunks, windows or near-duplicates with train or "
               f"lie in an article that does ({s.windows_affected} of {s.n_windows}; articles identified: "
               f"{result.group_method}).")
    return DataSignal("leakage", s.windows_affected > 0, summary, tuple(evidence), "lvmdiag leakage --train {train} --val {val}")


def _divergence_signal(result: Any) -> DataSignal:
    found = result.findings()
    n_tests = len(result.tests())
    summary = (f"{len(found)} of {n_tests} split-divergence tests significant at BH-adjusted α = {result.alpha} "
               f"({result.n_permutations} whole-article permutations).")
    pvals = [t.pvalue_adjusted if t.pvalue_adjusted is not None else t.pvalue for t in result.tests()]
    evidence = (Evidence("tests significant (BH-adjusted)", f"{len(found)} / {n_tests}"),
                Evidence("smallest BH-adjusted p-value", min(pvals) if pvals else None),
                *(Evidence("significant test", line) for line in found[:6]))
    return DataSignal("divergence", bool(found), summary, evidence, "lvmdiag diverge --train {train} --val {val}")


def _direction_signal(result: Any) -> DataSignal:
    detected = bool(result.detected())
    parts = []
    for s in result.splits:
        if s.classifier is not None:
            parts.append(Evidence(f"{s.split} direction classifier AUC (CV by article)",
                                  f"{s.classifier.effect.to_markdown()}, p {fmt(s.classifier.pvalue)}"))
    summary = ("a classifier tells true from reversed window order" if detected else
               "no classifier separates true from reversed window order") + f" at α = {result.alpha}."
    return DataSignal("direction", detected, summary, tuple(parts), "lvmdiag direction --train {train} --val {val}")


def _last(values: Any) -> float | None:
    if values is None:
        return None
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return float(finite[-1]) if finite.size else None


def add_retrieval(history: RunHistory, split: str, seqs: Any, baselines: list[BaselineMetrics],
                  source: str) -> str | None:
    """Score copy-last and mean-of-context by recall@1 and mean rank on ``seqs`` with the trainer's own
    evaluator (:func:`lvmdiag.train.evaluate.evaluate`: same usable rows, same pools, same candidates:
    pool targets + c_last), in place in ``baselines``; returns a note for the report.

    Only when the model logged retrieval for ``split`` (else there is nothing to compare). The pool size
    is the model's ``n_candidates - 1`` (else the config's ``eval_pool_size``, else 64). When the model was
    evaluated on a different number of rows (e.g. a train subsample) the rows are not the same and
    nothing is computed: the note says so.
    """
    import dataclasses
    import warnings

    from lvmdiag.train.baselines import copy_last, mean_context
    from lvmdiag.train.data import prepare_split
    from lvmdiag.train.evaluate import evaluate

    logged = history.eval.get(split, {})
    if not any(_last(logged.get(m)) is not None for m in ("recall_at_1", "rank_mean")):
        return None
    n_cand = _last(logged.get("n_candidates"))
    configured = history.config.get("eval_pool_size")
    pool = int(n_cand) - 1 if n_cand is not None else configured if isinstance(configured, int) and configured > 0 else 64
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropped rows are the trainer's rule too; the reader already said so
        arrays = prepare_split(seqs, split)
    n_model = _last(logged.get("n"))
    if n_model is not None and int(n_model) != arrays.n:
        return (f"retrieval baselines for {split} not computed: the model was evaluated on {int(n_model)} rows, "
                f"{source} has {arrays.n} usable rows (not the same rows).")
    n_candidates = None
    for i, b in enumerate(baselines):
        predict = {"copy_last": copy_last, "mean_context": mean_context}.get(b.predictor)
        if b.split != split or predict is None or b.recall_at_1 is not None:
            continue
        m = evaluate(predict, arrays.contexts, arrays.targets, pool_size=pool)
        n_candidates = m.n_candidates
        baselines[i] = dataclasses.replace(b, recall_at_1=m.recall_at_1, rank_mean=m.rank_mean,
                                           n_candidates=m.n_candidates)
    if n_candidates is None:
        return None
    return (f"retrieval baselines (recall@1, mean rank) for {split} computed on {source} by the trainer's "
            f"evaluator ({n_candidates} candidates: pool targets + c_last).")


def gather_data(history: RunHistory, *, train: str | Path | None = None, val: str | Path | None = None, k: int = 5,
                allow_pickle: bool = False, rng: Any = 0, progress: ProgressCallback | None = None,
                analyses: Sequence[str] = DEFAULT_ANALYSES) -> DataContext:
    """Collect baselines and data signals for a run (never fails for lack of data).

    Parameters
    ----------
    history : the run (its config names the data files)
    train, val : data paths overriding the config's ``train_npz`` / ``val_npz``
    k : window length for article stores
    allow_pickle : passed to the reader (object arrays)
    rng : seed for the analyzers' resampling
    progress : optional ``callback(done, total)``
    analyses : which of "bias", "leakage", "divergence", "direction" to run on readable data. When the
        run has ``baselines.json`` and no path was given explicitly, no analysis runs (the trainer calls
        the report at the end of a run; its baselines are already computed).

    Returns
    -------
    DataContext

    Raises
    ------
    InputError
        An unknown analysis name, or an explicit ``train``/``val`` path that does not exist.
    """
    unknown = [a for a in analyses if a not in ANALYSES]
    if unknown:
        raise InputError(f"unknown data analysis {', '.join(map(repr, unknown))}; choose from {', '.join(ANALYSES)}.")
    paths, notes = resolve_data_paths(history, train, val)
    baselines: list[BaselineMetrics] = []
    if history.baselines:
        baselines += from_baselines_json(history.baselines, source="baselines.json")
        if baselines:
            notes.append("baselines from the run's baselines.json (computed by the trainer on the evaluation rows).")
        else:
            notes.append("the run's baselines.json holds no predictor with numeric cos_next and cos_prev; not used.")
    readable = {s: p for s, p in paths.items() if p is not None}
    if readable and history.baselines and train is None and val is None:
        notes.append("data analyses skipped (the run has baselines.json); pass --train/--val to run "
                     f"{', '.join(analyses)} on the data.")
        readable = {}
    if not readable:
        return DataContext({s: None for s in paths}, tuple(notes), tuple(baselines))
    try:
        from lvmdiag.data.readers import load_sequences
    except ImportError as exc:  # pragma: no cover - the data layer is part of lvmdiag
        notes.append(f"data reader unavailable ({exc}); data evidence skipped.")
        return DataContext({s: str(p) for s, p in readable.items()}, tuple(notes), tuple(baselines))
    explicit = {"train": train, "val": val}
    seqs = {}
    for s, p in readable.items():
        try:
            seqs[s] = load_sequences(p, split=s, k=k, allow_pickle=allow_pickle)
        except LvmdiagError as exc:
            if explicit[s] is not None:
                raise  # the user named this file: a bad file is their error to fix
            # a path taken from the config: the history findings still stand, so say why the data is unused
            notes.append(f"config {s}_npz = '{p}' could not be read ({exc}); data evidence for {s} skipped "
                         f"(pass --{s} PATH to use other data).")
            paths[s] = None
    readable = {s: p for s, p in readable.items() if s in seqs}
    if not seqs:
        return DataContext({s: None for s in paths}, tuple(notes), tuple(baselines))
    bias: list[BiasSummary] = []
    signals: list[DataSignal] = []
    # articles are identified once, over all readable splits together (recovery links windows across
    # files), and every analysis below uses that one grouping instead of recovering it again
    from lvmdiag.data.groups import resolve_groups

    names = list(seqs)
    groups = resolve_groups([seqs[s] for s in names])
    labels = dict(zip(names, groups.labels))
    if "bias" in analyses:
        from lvmdiag.analyzers.temporal_bias import analyze_bias

        for s, seq in seqs.items():
            result = analyze_bias(seq, groups=labels[s], group_method=groups.method, group_note=groups.note,
                                  rng=rng, progress=progress)
            bias.append(_bias_summary(result, s))
            if not any(b.split == s for b in baselines):
                baselines += from_bias_result(result, s, source=f"lvmdiag bias on {readable[s]}")
                note = add_retrieval(history, s, seq, baselines, str(readable[s]))
                if note:
                    notes.append(note)
    if {"train", "val"} <= set(seqs):
        pair = {"train": seqs["train"], "val": seqs["val"]}
        # the assignment itself (it names its method: given or recovered) when it covers exactly the pair
        pair_groups = groups if names == ["train", "val"] else [labels["train"], labels["val"]]
        if "leakage" in analyses:
            from lvmdiag.analyzers.leakage import analyze_leakage

            sig = _leakage_signal(analyze_leakage(pair, groups=pair_groups, progress=progress), "val")
            if sig is not None:
                signals.append(sig)
        if "divergence" in analyses:
            from lvmdiag.analyzers.divergence import analyze_divergence

            signals.append(_divergence_signal(analyze_divergence(pair, groups=pair_groups, rng=rng, progress=progress)))
        if "direction" in analyses:
            from lvmdiag.analyzers.direction import analyze_direction

            signals.append(_direction_signal(analyze_direction(pair, groups=pair_groups, rng=rng, progress=progress)))
    elif set(analyses) & {"leakage", "divergence", "direction"}:
        notes.append("leakage/divergence/direction need both train and val data; only "
                     f"{', '.join(seqs)} was readable.")
    return DataContext({s: (str(p) if p is not None else None) for s, p in paths.items()}, tuple(notes),
                       tuple(baselines), tuple(bias), tuple(signals))

"""The single data commands (bias, direction, diverge, leakage) through the engine: their own section, one pass.

With ``engine="local"|"dask"`` (``--engine``), or when a split is a folder or list of ``.npy`` shard
directories, a command plans only its own section(s) with :func:`lvmdiag.engine.data.run_sections`,
streams the splits once through the local or Dask runner and returns the result type of its one-shot
function (BiasReport, DirectionResult, DivergenceResult, LeakageResult), so markdown, JSON and HTML
render as before; the :class:`~lvmdiag.engine.runner.RunSummary` says which engine read how many
windows per split. Each section gets the one-shot function's own defaults (``direction``'s
``n_bootstrap=1000``, ``diverge``'s ``rff_features``, ``leakage``'s ``max_examples``), and an integer
seed goes to every section unchanged, so the engine's numbers equal the one-shot ones (within the
float policy of docs/ENGINE.md) for the same ``seed``.

Each ``run_*`` function is what the command and the Python API call: with ``engine=None`` and no
sharded split it runs today's one-shot function (the default; ``docs/ENGINE.md``, "Running it", gives
the measurement behind it) and returns ``(result, None)``; else ``(result, RunSummary)``.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from lvmdiag.engine.data import BLOCK_ROWS, check_engine
from lvmdiag.engine.runner import RunSummary
from lvmdiag.errors import InputError

ProgressCallback = Callable[[int, int], None]


def is_sharded(value: Any) -> bool:
    """True for a split given as a folder of ``.npy`` shard directories or a list of shard paths."""
    from lvmdiag.engine.sources import ShardedSplit, shard_paths

    if isinstance(value, ShardedSplit):
        return True
    if isinstance(value, (str, os.PathLike)):
        return shard_paths(value) is not None
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, (str, os.PathLike)) for v in value)


def resolve_engine(splits: Mapping[str, Any], engine: str | None, scheduler: str | None) -> str | None:
    """The engine a single command runs on: the one asked for; "local" when a split is sharded; else None
    (the one-shot function). Bad values fail in one line before any file is read."""
    check_engine(engine, scheduler)
    if engine is None and any(v is not None and is_sharded(v) for v in splits.values()):
        return "local"
    return engine


def _load(splits: Mapping[str, Any], k: int, allow_pickle: bool) -> dict[str, Any]:
    """The one-shot commands' inputs: paths read with the full validation scan, SequenceSets as given."""
    from lvmdiag.data.readers import load_sequences

    return {n: v if not isinstance(v, (str, os.PathLike)) else load_sequences(v, split=n, k=k, allow_pickle=allow_pickle)
            for n, v in splits.items() if v is not None}


def _open(splits: Mapping[str, Any], k: int, allow_pickle: bool) -> dict[str, Any]:
    """Splits as the data report opens them: shards lazily (validated in the pass), files read once."""
    from lvmdiag.analyzers.data_report import _load_all

    loaded = _load_all({n: v for n, v in splits.items() if v is not None}, k, allow_pickle)
    if "train" not in loaded:
        raise InputError(f"the engine needs a 'train' split; got {sorted(loaded)}.")
    return {"train": loaded["train"], **{n: s for n, s in loaded.items() if n != "train"}}


def _run(splits: Mapping[str, Any], sections: Sequence[str], options: Mapping[str, Mapping[str, Any]], *,
         k: int, allow_pickle: bool, seed: int, n_permutations: int | str = "auto", n_bootstrap: int = 200,
         threshold: float = 0.98, alpha: float = 0.05, engine: str, scheduler: str | None, block_rows: int,
         progress: ProgressCallback | None) -> tuple[dict[str, Any], dict[str, Any], RunSummary]:
    from lvmdiag._validate import COUNT, check, check_options
    from lvmdiag.engine.session import engine_client, engine_groups
    from lvmdiag.engine.data import run_sections

    check_engine(engine, scheduler)
    check_options(n_permutations=n_permutations, n_bootstrap=n_bootstrap, threshold=threshold, rng=seed)
    check("block_rows", block_rows, COUNT)
    if engine == "dask":  # a missing extra fails before any file is read
        from lvmdiag.engine.dask_runner import _require

        _require()
    if not (seed is None or isinstance(seed, (int, np.integer))):  # a Generator: one integer seed drawn from it
        from lvmdiag.stats.resampling import as_rng

        seed = int(as_rng(seed).integers(2**31))
    loaded = _open(splits, k, allow_pickle)
    with engine_client(engine or "local", scheduler) as client:  # one client: the recovery and the pass
        groups = engine_groups(loaded, client, progress)
        results, skipped, summary = run_sections(
            loaded, groups, sections, "train", n_permutations=n_permutations, n_bootstrap=n_bootstrap,
            threshold=threshold, alpha=alpha, seeds={s: int(seed or 0) for s in sections}, engine=engine or "local",
            scheduler=scheduler, client=client, progress=progress, options=options, block_rows=block_rows)
    missing = [s for s in sections if s not in results]
    if missing:  # a section that cannot be computed is an input error, as in the one-shot function (one line)
        raise InputError("; ".join(skipped.get(s, f"{s}: not computed") for s in missing))
    return results, loaded, summary


def run_bias(splits: Mapping[str, Any], *, k: int = 5, allow_pickle: bool = False, direction: bool = True,
             n_resamples: int = 1000, n_permutations: int | str = "auto", seed: int = 0, block_rows: int = 8192,
             engine: str | None = None, scheduler: str | None = None, progress: ProgressCallback | None = None,
             ) -> tuple[Any, RunSummary | None]:
    """``lvmdiag bias``: :func:`lvmdiag.analyzers.bias_report.analyze_bias_report`, one-shot or through the engine
    (bias and direction then share one read). Returns (BiasReport, RunSummary or None)."""
    from lvmdiag.analyzers.bias_report import BiasReport, analyze_bias_report

    engine = resolve_engine(splits, engine, scheduler)
    if engine is None:
        return analyze_bias_report(_load(splits, k, allow_pickle), direction=direction, n_resamples=n_resamples,
                                   n_permutations=n_permutations, rng=seed, block_rows=block_rows,
                                   progress=progress), None
    sections = ["bias", "direction"] if direction else ["bias"]
    options = {"bias": {"n_resamples": n_resamples}, "direction": {"n_bootstrap": 1000}}
    results, loaded, summary = _run(splits, sections, options, k=k, allow_pickle=allow_pickle, seed=seed,
                                    n_permutations=n_permutations, engine=engine, scheduler=scheduler,
                                    block_rows=block_rows, progress=progress)
    comparison = results["bias"]
    # one split: the one-shot command reports a BiasResult, which is the comparison's first result
    # (same state, same first draws of the seed's generator)
    one = comparison.results["train"] if len(loaded) == 1 else comparison
    return BiasReport(bias=one, direction=results.get("direction")), summary


def run_direction(splits: Mapping[str, Any], *, k: int = 5, allow_pickle: bool = False, seed: int = 0,
                  n_permutations: int | str = "auto", max_windows: int | None = 100_000, n_bootstrap: int = 1000,
                  block_rows: int = 8192, engine: str | None = None, scheduler: str | None = None,
                  progress: ProgressCallback | None = None) -> tuple[Any, RunSummary | None]:
    """``lvmdiag direction``: :func:`lvmdiag.analyzers.direction.analyze_direction`, one-shot or through the engine.
    Returns (DirectionResult, RunSummary or None)."""
    from lvmdiag.analyzers.direction import analyze_direction

    engine = resolve_engine(splits, engine, scheduler)
    if engine is None:
        return analyze_direction(_load(splits, k, allow_pickle), n_permutations=n_permutations,
                                 n_bootstrap=n_bootstrap, max_windows=max_windows, block_rows=block_rows, rng=seed,
                                 progress=progress), None
    if max_windows is not None and max_windows < 10:
        raise InputError(f"max_windows must be >= 10 or None; got {max_windows}.")
    options = {"direction": {"max_windows": max_windows, "n_bootstrap": n_bootstrap}}
    results, _, summary = _run(splits, ["direction"], options, k=k, allow_pickle=allow_pickle, seed=seed,
                               n_permutations=n_permutations, engine=engine, scheduler=scheduler,
                               block_rows=block_rows, progress=progress)
    return results["direction"], summary


def run_diverge(splits: Mapping[str, Any], *, k: int = 5, allow_pickle: bool = False,
                n_permutations: int | str = "auto", n_bootstrap: int = 200, rff_features: int = 512, seed: int = 0,
                block_rows: int = 2048, engine: str | None = None, scheduler: str | None = None,
                progress: ProgressCallback | None = None) -> tuple[Any, RunSummary | None]:
    """``lvmdiag diverge``: :func:`lvmdiag.analyzers.divergence.analyze_divergence`, one-shot or through the engine
    (``block_rows``: windows per streamed block). Returns (DivergenceResult, RunSummary or None)."""
    from lvmdiag.analyzers.divergence import analyze_divergence

    engine = resolve_engine(splits, engine, scheduler)
    if engine is None:
        return analyze_divergence(_load(splits, k, allow_pickle), n_permutations=n_permutations,
                                  n_bootstrap=n_bootstrap, rff_features=rff_features, rng=seed, block_rows=block_rows,
                                  progress=progress), None
    _need_two(splits, "diverge")
    options = {"divergence": {"rff_features": rff_features}}
    results, _, summary = _run(splits, ["divergence"], options, k=k, allow_pickle=allow_pickle, seed=seed,
                               n_permutations=n_permutations, n_bootstrap=n_bootstrap, engine=engine,
                               scheduler=scheduler, block_rows=block_rows, progress=progress)
    return results["divergence"], summary


def run_leakage(splits: Mapping[str, Any], *, k: int = 5, allow_pickle: bool = False, threshold: float = 0.98,
                max_examples: int = 10, block_rows: int = BLOCK_ROWS, engine: str | None = None,
                scheduler: str | None = None, progress: ProgressCallback | None = None,
                ) -> tuple[Any, RunSummary | None]:
    """``lvmdiag leakage``: :func:`lvmdiag.analyzers.leakage.analyze_leakage`, one-shot or through the engine (train
    read once: keys and the near-duplicate search together). Returns (LeakageResult, RunSummary or None)."""
    from dataclasses import replace

    from lvmdiag.analyzers.leakage import _with_texts, analyze_leakage

    engine = resolve_engine(splits, engine, scheduler)
    if engine is None:
        return analyze_leakage(_load(splits, k, allow_pickle), threshold=threshold, max_examples=max_examples,
                               block_rows=block_rows, progress=progress), None
    _need_two(splits, "leakage")
    if max_examples < 0:
        raise InputError(f"max_examples must be >= 0; got {max_examples}.")
    options = {"leakage": {"max_examples": max_examples}}
    results, loaded, summary = _run(splits, ["leakage"], options, k=k, allow_pickle=allow_pickle, seed=0,
                                    threshold=threshold, engine=engine, scheduler=scheduler, block_rows=block_rows,
                                    progress=progress)
    res = results["leakage"]
    # the chunk texts of near-duplicate pairs, where a texts file is known (as the one-shot command shows them)
    texts = tuple(_with_texts(s, loaded[s.split], loaded["train"]) for s in res.splits)
    return replace(res, splits=texts), summary


def _need_two(splits: Mapping[str, Any], command: str) -> None:
    given = [n for n, v in splits.items() if v is not None]
    if "train" not in given or len(given) < 2:
        raise InputError(f"{command} compares splits: give train and val (and optionally ood); got {given}.")


def engine_line(summary: RunSummary) -> str:
    """One markdown line: the engine and the windows its single pass read per split."""
    rows = ", ".join(f"{k} {v}" for k, v in summary.rows_read.items())
    return (f"*Engine: {summary.engine} ({summary.n_parts} part(s), {summary.n_blocks} block(s)); windows read in "
            f"one pass: {rows}.*")


def insert_after_title(markdown: str, line: str) -> str:
    """``markdown`` with ``line`` as a paragraph under its first heading (at the top when it has none)."""
    lines = markdown.split("\n")
    at = next((i + 1 for i, text in enumerate(lines) if text.startswith("#")), 0)
    gap = [""] if at < len(lines) and lines[at] != "" else []
    return "\n".join(lines[:at] + ([""] if at else []) + [line] + gap + lines[at:])


def with_engine_line(markdown: str, summary: RunSummary | None) -> str:
    """``markdown`` with :func:`engine_line` under its first heading (unchanged when no engine ran)."""
    return markdown if summary is None else insert_after_title(markdown, engine_line(summary))


def with_engine_dict(payload: dict[str, Any], summary: RunSummary | None) -> dict[str, Any]:
    """The result's JSON with ``engine`` (the RunSummary, as in the data report) when an engine ran."""
    return payload if summary is None else {**payload, "engine": summary.to_dict()}

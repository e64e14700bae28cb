"""`lvmdiag data` through the engine: plan the four sections, read the splits once, finalize each section."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from lvmdiag.engine.block import Part
from lvmdiag.engine.runner import RunSummary, finalize_all, run_local
from lvmdiag.errors import LvmdiagError

#: rows per block of the shared pass (~ 4096 x (K+1) x 768 x 4 B = 75 MB at K = 5)
BLOCK_ROWS = 4096


ENGINES = ("local", "dask")


def check_engine(engine: str | None, scheduler: str | None) -> None:
    """``engine`` must be local or dask (None: the caller's default); a scheduler address only with dask."""
    from lvmdiag.errors import InputError

    if engine is not None and engine not in ENGINES:
        raise InputError(f"--engine must be local or dask; got {engine!r}.")
    if scheduler and engine != "dask":
        raise InputError("--scheduler needs --engine dask.")


def plan_sections(sources: Mapping[str, Any], groups: Any, sections: Sequence[str], reference: str, *,
                  n_permutations: int | str, n_bootstrap: int, threshold: float, alpha: float,
                  seeds: Mapping[str, int], options: Mapping[str, Mapping[str, Any]] | None = None,
                  ) -> tuple[list[Any], dict[str, str]]:
    """The engine analyzers of the requested sections, planned on the client; a section that cannot be
    planned (too little data for it, module missing) is returned in ``skipped`` with the reason.

    ``options``: section -> keyword arguments that replace the shared ones for that section only (a single
    command's own defaults, e.g. ``{"direction": {"n_bootstrap": 1000, "max_windows": 10_000}}``).
    """
    import importlib

    def section(module: str, attr: str) -> Any:  # imported per section: a missing module skips only its section
        return getattr(importlib.import_module(module), attr)

    sec = "lvmdiag.engine.sections"
    names = [reference] + [n for n in sources if n != reference]
    first = sources[reference]
    opts = {name: dict(o) for name, o in (options or {}).items()}

    def kw(name: str, **shared: Any) -> dict[str, Any]:
        return {**shared, **opts.get(name, {})}

    makers: dict[str, Callable[[], Any]] = {
        "bias": lambda: section(sec, "BiasAnalyzer")(**kw(
            "bias", reference=reference, k=first.k, d=first.d, group_method=groups.method, group_note=groups.note,
            n_resamples=n_bootstrap, seed=seeds["bias"], n_permutations=n_permutations, alpha=alpha)),
        "direction": lambda: section(sec, "DirectionAnalyzer")(**kw(
            "direction", splits=names, reference=reference, k=first.k, d=first.d,
            method=groups.method, note=groups.note, n_permutations=n_permutations, n_bootstrap=n_bootstrap,
            alpha=alpha, seed=seeds["direction"])),
        "divergence": lambda: section(sec, "plan_divergence_analyzer")(
            {n: sources[n] for n in names}, groups, reference, **kw(
                "divergence", n_permutations=n_permutations, n_bootstrap=n_bootstrap, alpha=alpha,
                seed=seeds["divergence"])),
        "leakage": lambda: section("lvmdiag.engine.leakage", "LeakageAnalyzer")(**kw(
            "leakage", names=names, reference=reference, d=first.d, groups=groups, threshold=threshold,
            n_reference=first.n)),
    }
    analyzers, skipped = [], {}
    for name in sections:
        try:
            analyzers.append(makers[name]())
        except ImportError as exc:
            skipped[name] = f"module unavailable: {exc}"
        except LvmdiagError as exc:
            skipped[name] = str(exc)
    return analyzers, skipped


def parts_of(sources: Mapping[str, Any], groups: Any, reference: str, *, split_columnar: bool = False) -> list[Part]:
    """Engine parts: one per shard of a sharded split; with ``split_columnar`` (Dask), contiguous window
    ranges of a columnar split (:func:`~lvmdiag.engine.sources.window_range_parts`); else one per loaded
    split (read whole by one task)."""
    from lvmdiag.engine.sources import ShardedSplit, shard_parts, window_range_parts

    names = [reference] + [n for n in sources if n != reference]
    parts: list[Part] = []
    for n, lab in zip(names, groups.labels):
        src = sources[n]
        if isinstance(src, ShardedSplit):
            parts += shard_parts(src, lab)
        elif split_columnar and (ranges := window_range_parts(src, n, lab)) is not None:
            parts += ranges
        else:
            parts.append(Part(n, 0, src, np.asarray(lab, dtype=np.int64), getattr(src, "valid", None)))
    return parts


def run_sections(sources: Mapping[str, Any], groups: Any, sections: Sequence[str], reference: str, *,
                 n_permutations: int | str, n_bootstrap: int, threshold: float, alpha: float, seeds: Mapping[str, int],
                 parts: Sequence[Part] | None = None, engine: str = "local", scheduler: str | None = None,
                 client: Any = None,
                 progress: Callable[[int, int], None] | None = None,
                 options: Mapping[str, Mapping[str, Any]] | None = None, block_rows: int = BLOCK_ROWS,
                 ) -> tuple[dict[str, Any], dict[str, str], RunSummary]:
    """Plan, stream once (locally or on Dask), finalize. Returns (results, skipped, run summary).

    ``client``: an open ``distributed.Client`` to use with ``engine="dask"`` (else one is made from ``scheduler``).
    ``options``: per-section keyword overrides (:func:`plan_sections`); ``block_rows``: rows per block.
    """
    check_engine(engine, scheduler)
    shapes = {n: (s.k, s.d) for n, s in sources.items()}
    if len(set(shapes.values())) > 1:
        from lvmdiag.errors import InputError

        raise InputError("every split must share window length K and dimension D; got "
                         + ", ".join(f"{n} ({getattr(sources[n], 'source', n)}) K={k} D={d}"
                                     for n, (k, d) in shapes.items()) + ".")
    analyzers, skipped = plan_sections(sources, groups, sections, reference, n_permutations=n_permutations,
                                       n_bootstrap=n_bootstrap, threshold=threshold, alpha=alpha, seeds=seeds,
                                       options=options)
    parts = list(parts) if parts is not None else parts_of(sources, groups, reference, split_columnar=engine == "dask")
    from lvmdiag.engine.sources import ShardedSplit

    def unscanned(s: Any) -> bool:
        return isinstance(s, ShardedSplit) or (getattr(s, "attrs", {}).get("validation") or {}).get("mode") == "none"

    if any(unscanned(s) for s in sources.values()):  # not scanned at load: validate in the pass
        from lvmdiag.engine.validation import ValidationAnalyzer

        analyzers = [ValidationAnalyzer()] + analyzers
    if engine == "dask":
        from lvmdiag.engine.dask_runner import run_dask

        prepared, states, summary = run_dask(parts, analyzers, block_rows=block_rows, scheduler=scheduler,
                                             client=client, progress=progress)
    else:
        prepared, states, summary = run_local(parts, analyzers, block_rows=block_rows, progress=progress)
    validation = next((a for a in prepared if a.name == "validation"), None)
    prepared = list(prepared)  # owned here: finalize_all drops each analyzer (and its state) once finalized
    if validation is not None:  # no usable window at all is an input error, not a skipped section
        validation.finalize(states["validation"], sources)
        prepared = [a for a in prepared if a is not validation]
    results, failed = finalize_all(prepared, states, sources, release=True)  # each state freed once finalized
    skipped.update(failed)
    return results, skipped, summary

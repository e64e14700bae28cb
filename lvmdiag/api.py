"""The notebook-first API: one function per CLI command, taking paths or in-memory data, with the CLI's defaults.

Each split may be given as

* a path (any file or ``.npy`` directory the CLI reads), read exactly as the CLI reads it;
* a :class:`~lvmdiag.data.SequenceSet` or :class:`~lvmdiag.data.ArticleStore`;
* windows: a tuple ``(contexts (N, K, D), targets (N, D))`` or ``(contexts, targets, article_ids)``,
  or a mapping / pandas DataFrame / pyarrow Table with ``contexts``, ``targets`` and optionally
  ``article_ids`` (one row per window; vector cells hold arrays or lists);
* an article store: a tuple ``(vectors (N, D), article_ids (N,))``, or a mapping / table with
  ``vectors``, ``article_ids`` and optionally ``chunk_index`` (one row per chunk, in chunk order
  within each article); windows of ``k`` context chunks are built as from a store file.

numpy arrays, torch tensors (moved to the CPU) and anything ``np.asarray`` accepts work as arrays.
In-memory windows go through the same validation as a file (zero and non-finite rows are masked),
so ``lvmdiag.bias(arrays)`` gives the same JSON as ``lvmdiag bias`` on the arrays saved to disk.
Every function returns the library's result object (``to_dict``, ``to_markdown``, ``to_html``,
``plot``, ``to_frame``; Jupyter shows it as HTML).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from lvmdiag.errors import InputError

Progress = Callable[[int, int], None]
_ID_NAMES = ("article_ids", "article_id")


def _is_path(obj: Any) -> bool:
    return isinstance(obj, (str, os.PathLike))


def _array(x: Any, what: str) -> np.ndarray:
    """numpy view of an array-like (torch tensors detached to the CPU; nested object cells stacked)."""
    if type(x).__module__.split(".")[0] == "torch":
        x = x.detach().cpu().numpy()
    elif hasattr(x, "to_numpy") and type(x).__module__.split(".")[0] in ("pandas", "pyarrow"):
        x = x.to_numpy(zero_copy_only=False) if type(x).__module__.startswith("pyarrow") else x.to_numpy()
    arr = np.asarray(x)
    if arr.dtype == object and arr.size:
        try:
            arr = np.stack([_array(v, what) for v in arr])
        except ValueError as exc:
            raise InputError(f"{what}: cells must be equal-length vectors ({exc}).") from None
    return arr


def _columns(obj: Any) -> dict[str, Any] | None:
    """Column name -> column of a mapping, pandas DataFrame or pyarrow Table (None for anything else)."""
    if isinstance(obj, Mapping):
        return dict(obj)
    module = type(obj).__module__.split(".")[0]
    if module == "pandas" and hasattr(obj, "columns"):
        return {str(c): obj[c] for c in obj.columns}
    if module == "pyarrow" and hasattr(obj, "column_names"):
        return {c: obj.column(c) for c in obj.column_names}
    return None


def _ids(cols: Mapping[str, Any], label: str) -> np.ndarray | None:
    for key in _ID_NAMES:
        if key in cols and cols[key] is not None:
            return _array(cols[key], f"{label} {key}")
    return None


def _windows(contexts: Any, targets: Any, ids: Any, label: str, name: str):  # noqa: ANN202
    """A validated SequenceSet from in-memory windows (the checks and row mask a file read applies)."""
    from lvmdiag.data.sequences import SequenceSet
    from lvmdiag.data.validate import check_sequence_shapes, require_float, scan_sequences

    c, t = _array(contexts, f"{label} contexts"), _array(targets, f"{label} targets")
    notes = [n for n in (require_float(c.dtype, "contexts", label), require_float(t.dtype, "targets", label)) if n]
    check_sequence_shapes(c.shape, t.shape, label, "contexts", "targets")
    article_ids = None
    if ids is not None:
        raw = _array(ids, f"{label} article_ids")
        if raw.ndim != 1 or raw.shape[0] != c.shape[0]:
            raise InputError(f"article_ids of {label} must have one entry per window ({c.shape[0]}); got shape {raw.shape}.")
        article_ids = (raw if raw.dtype.kind in "iu" else np.unique(raw.astype(str), return_inverse=True)[1]).astype(np.int64)
    report = scan_sequences(c, t, label, "contexts", "targets", notes)
    return SequenceSet(contexts=c, targets=t, article_ids=article_ids,
                       id_source="given" if article_ids is not None else "none", source=label, split=name,
                       fmt="arxiv", attrs={"keys": {"contexts": "contexts", "targets": "targets",
                                                    "article_ids": "article_ids" if article_ids is not None else None},
                                           "validation": report.summary(), "dtype": str(c.dtype)},
                       valid=report.valid)


def _store(vectors: Any, ids: Any, chunk_index: Any, label: str):  # noqa: ANN202
    """An ArticleStore from in-memory chunk vectors and their article ids (string ids hashed as in files)."""
    from lvmdiag.data.store import ArticleStore, ids_to_keys
    from lvmdiag.data.validate import require_float

    v = _array(vectors, f"{label} vectors")
    require_float(v.dtype, "vectors", label)
    if v.ndim != 2 or v.shape[0] == 0 or v.shape[1] == 0:
        raise InputError(f"vectors of {label} must have shape (N, D) with N, D >= 1; got {v.shape}.")
    raw = _array(ids, f"{label} article_ids")
    if raw.ndim != 1 or raw.shape[0] != v.shape[0]:
        raise InputError(f"article_ids of {label} must have one entry per vector ({v.shape[0]}); got shape {raw.shape}.")
    keys, names_by_key = ids_to_keys(raw)
    chunk = None if chunk_index is None else _array(chunk_index, f"{label} chunk_index").astype(np.int64)
    ukeys, codes = np.unique(keys, return_inverse=True)
    return ArticleStore(vectors=v, article_ids=codes.reshape(-1).astype(np.int64), chunk_index=chunk,
                        article_names=np.array([names_by_key.get(int(k), str(int(k))) for k in ukeys], dtype=str),
                        source=label, fmt="python_docs_store" if chunk is not None else "arxiv_store",
                        article_keys=ukeys.astype(np.int64))


def as_sequences(data: Any, name: str = "train", *, k: int = 5, allow_pickle: bool = False):  # noqa: ANN201
    """One split as a :class:`~lvmdiag.data.SequenceSet`, from any of the forms in the module docstring."""
    from dataclasses import replace

    from lvmdiag.data.readers import _store_to_sequences, load_sequences
    from lvmdiag.data.sequences import SequenceSet
    from lvmdiag.data.store import ArticleStore

    label = f"<{name} in memory>"
    if _is_path(data):
        return load_sequences(data, split=name, k=k, allow_pickle=allow_pickle)
    if isinstance(data, SequenceSet):
        return data if data.split == name else replace(data, split=name)
    if isinstance(data, ArticleStore):
        return _store_to_sequences(data, k, data.source, name)
    cols = _columns(data)
    if cols is not None:
        if "contexts" in cols and "targets" in cols:
            return _windows(cols["contexts"], cols["targets"], _ids(cols, label), label, name)
        if "vectors" in cols and _ids(cols, label) is not None:
            store = _store(cols["vectors"], _ids(cols, label), cols.get("chunk_index"), label)
            return _store_to_sequences(store, k, label, name)
        raise InputError(f"{name}: expected columns contexts + targets (windows) or vectors + article_ids (an "
                         f"article store); got {', '.join(map(str, cols)) or 'none'}.")
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        first = _array(data[0], f"{label} first array")
        if first.ndim == 3:
            return _windows(first, data[1], data[2] if len(data) == 3 else None, label, name)
        if first.ndim == 2 and len(data) == 2:
            return _store_to_sequences(_store(first, data[1], None, label), k, label, name)
    raise InputError(f"{name}: give a path, a SequenceSet, an ArticleStore, (contexts (N,K,D), targets (N,D)[, "
                     f"article_ids]), (vectors (N,D), article_ids), or a table with those columns; "
                     f"got {type(data).__name__}.")


def _inputs(train: Any, val: Any, ood: Any, k: int | None, allow_pickle: bool) -> tuple[dict[str, Any], int]:
    """(splits, K) for a command: paths and shard lists as given (read as the CLI reads them), in-memory data
    as SequenceSets; K is the CLI's default when ``k`` is None. An explicit ``k`` that a window input (file or
    in memory) does not have is an error, as the CLI's --k."""
    from lvmdiag.data.window_k import k_mismatch
    from lvmdiag.engine.commands import is_sharded

    want = _k_for(k, {"train": train, "val": val, "ood": ood})
    out = {}
    for n, d in (("train", train), ("val", val), ("ood", ood)):
        if d is None:
            continue
        out[n] = d if _is_path(d) or is_sharded(d) else as_sequences(d, n, k=want, allow_pickle=allow_pickle)
        if k is not None and not isinstance(out[n], (str, os.PathLike)) and getattr(out[n], "k", k) != k:
            raise InputError(k_mismatch(k, int(out[n].k), f"{n} (in memory)", "k="))
    return out, want


def _k_for(k: int | None, named: dict[str, Any]) -> int:
    """:func:`lvmdiag.data.window_k.resolve_k` over the inputs given as paths (in-memory ones have no file)."""
    from lvmdiag.data.window_k import resolve_k

    return resolve_k(k, [(n, d) for n, d in named.items() if d is not None and _is_path(d)], k_name="k=")


def bias(train: Any, val: Any = None, ood: Any = None, *, k: int | None = None, allow_pickle: bool = False,
         n_resamples: int = 1000, seed: int = 0, block_rows: int = 8192, direction: bool = True,
         n_permutations: int | str = "auto", engine: str | None = None, scheduler: str | None = None,
         progress: Progress | None = None):  # noqa: ANN201
    """``lvmdiag bias``: temporal bias per split, val/ood − train differences, and the direction test.

    ``engine`` ("local" or "dask", ``scheduler`` an address for dask) streams the splits once through
    :mod:`lvmdiag.engine`; a split given as a folder or list of ``.npy`` shard directories uses it too.
    The result is the same type and, within docs/ENGINE.md's float tolerance, the same numbers.
    """
    from lvmdiag.engine.commands import run_bias

    splits, k = _inputs(train, val, ood, k, allow_pickle)
    return run_bias(splits, k=k, allow_pickle=allow_pickle, direction=direction,
                    n_resamples=n_resamples, n_permutations=n_permutations, seed=seed, block_rows=block_rows,
                    engine=engine, scheduler=scheduler, progress=progress)[0]


def direction(train: Any, val: Any = None, ood: Any = None, *, k: int | None = None, allow_pickle: bool = False,
              seed: int = 0, n_permutations: int | str = "auto", max_windows: int = 100_000,
              engine: str | None = None, scheduler: str | None = None,
              progress: Progress | None = None):  # noqa: ANN201
    """``lvmdiag direction``: can the data tell forward from reversed order, and does each split run the same way?
    (``engine``, ``scheduler``: as in :func:`bias`)"""
    from lvmdiag.engine.commands import run_direction

    splits, k = _inputs(train, val, ood, k, allow_pickle)
    return run_direction(splits, k=k, allow_pickle=allow_pickle, seed=seed,
                         n_permutations=n_permutations, max_windows=max_windows, engine=engine,
                         scheduler=scheduler, progress=progress)[0]


def diverge(train: Any, val: Any, ood: Any = None, *, k: int | None = None, allow_pickle: bool = False,
            n_permutations: int | str = "auto", n_bootstrap: int = 200, rff_features: int = 512, seed: int = 0,
            block_rows: int = 2048, engine: str | None = None, scheduler: str | None = None,
            progress: Progress | None = None):  # noqa: ANN201
    """``lvmdiag diverge``: is val (and ood) distributed like train? Whole-article permutation tests.
    (``engine``, ``scheduler``: as in :func:`bias`)"""
    from lvmdiag.engine.commands import run_diverge

    splits, k = _inputs(train, val, ood, k, allow_pickle)
    return run_diverge(splits, k=k, allow_pickle=allow_pickle,
                       n_permutations=n_permutations, n_bootstrap=n_bootstrap, rff_features=rff_features, seed=seed,
                       block_rows=block_rows, engine=engine, scheduler=scheduler, progress=progress)[0]


def leakage(train: Any, val: Any, ood: Any = None, *, k: int | None = None, allow_pickle: bool = False,
            threshold: float = 0.98, max_examples: int = 10, block_rows: int = 4096,
            engine: str | None = None, scheduler: str | None = None,
            progress: Progress | None = None):  # noqa: ANN201
    """``lvmdiag leakage``: articles, chunks, windows and near-duplicates val (and ood) share with train.
    (``engine``, ``scheduler``: as in :func:`bias`)"""
    from lvmdiag.engine.commands import run_leakage

    splits, k = _inputs(train, val, ood, k, allow_pickle)
    return run_leakage(splits, k=k, allow_pickle=allow_pickle, threshold=threshold,
                       max_examples=max_examples, block_rows=block_rows, engine=engine, scheduler=scheduler,
                       progress=progress)[0]


def data(train: Any, val: Any, ood: Any = None, *, k: int | None = None, allow_pickle: bool = False,
         n_permutations: int | str = "auto", n_bootstrap: int = 200, threshold: float = 0.98, alpha: float = 0.05,
         seed: int = 0, engine: str = "local", scheduler: str | None = None,
         progress: Progress | None = None):  # noqa: ANN201
    """``lvmdiag data``: bias, direction, divergence and leakage in one report, verdict first (one read of every
    split; ``engine``: "local" or "dask", ``scheduler``: a Dask address)."""
    from lvmdiag.analyzers.data_report import analyze_data
    from lvmdiag.engine.data import check_engine

    check_engine(engine, scheduler)
    splits, k = _inputs(train, val, ood, k, allow_pickle)
    return analyze_data(splits, k=k, allow_pickle=allow_pickle, n_permutations=n_permutations,
                        n_bootstrap=n_bootstrap, threshold=threshold, alpha=alpha, rng=seed, engine=engine,
                        scheduler=scheduler, progress=progress)


def resplit(inputs: Any, out: str | os.PathLike[str], *, by: str = "article",
            ratios: Sequence[float] = (0.8, 0.1, 0.1), names: Sequence[str] = ("train", "val", "ood"),
            stratify: Sequence[str] | str = ("length", "delta"), seed: int = 0, force: bool = False, k: int | None = None,
            n_bins: int = 4, allow_pickle: bool = False, analyses: bool = True,
            progress: Progress | None = None):  # noqa: ANN201
    """``lvmdiag resplit``: article-disjoint, stratified splits written to ``out`` and verified on disk.

    ``inputs`` is one input or a list of them. Paths are read as the CLI reads them; in-memory data
    is first saved to a temporary ``.npz`` (a resplit writes its inputs' form back, so it needs one).
    """
    from lvmdiag.resplit import resplit as _resplit

    items = list(inputs) if isinstance(inputs, list) else [inputs]
    k = _k_for(k, {f"input {i}": item for i, item in enumerate(items)})
    stratify = tuple(s for s in stratify.split(",") if s) if isinstance(stratify, str) else tuple(stratify)
    with tempfile.TemporaryDirectory(prefix="lvmdiag-api-") as tmp:
        paths = []
        for i, item in enumerate(items):
            if _is_path(item):
                paths.append(item)
                continue
            from lvmdiag.data.writers import save_sequences

            seq = as_sequences(item, f"input{i}", k=k, allow_pickle=allow_pickle)
            paths.append(save_sequences(seq, Path(tmp) / f"input{i}.npz"))
        return _resplit(paths, out_dir=out, by=by, ratios=tuple(ratios), names=tuple(names), stratify=stratify,
                        seed=seed, force=force, k=k, n_bins=n_bins, allow_pickle=allow_pickle, analyses=analyses,
                        progress=progress)


def report(run_dir: str | os.PathLike[str], *, train: Any = None, val: Any = None, k: int | None = None,
           fmt: str = "auto", analyses: Sequence[str] | str = ("bias", "leakage"), allow_pickle: bool = False,
           seed: int = 0, progress: Progress | None = None):  # noqa: ANN201
    """``lvmdiag report RUN_DIR``: why a training run failed, from its logs (and its data when readable)."""
    from lvmdiag.report import build_run_report

    wanted = tuple(a.strip() for a in analyses.split(",") if a.strip()) if isinstance(analyses, str) else tuple(analyses)
    k = _k_for(k, {"train": train, "val": val})
    return build_run_report(run_dir, train=train, val=val, k=k, allow_pickle=allow_pickle, rng=seed,
                            progress=progress, fmt=fmt, analyses=wanted)


__all__ = ["as_sequences", "bias", "data", "direction", "diverge", "leakage", "report", "resplit"]

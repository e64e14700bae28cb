"""One call that turns sequence files into article-disjoint, stratified splits, and proves it.

:func:`resplit` pools the inputs, groups windows by article (given or recovered ids, or a metadata
key), merges any two articles that share a chunk vector (so "no shared chunk vector across splits"
holds by construction), bins per-article statistics into strata, assigns whole articles to splits
by window count (:mod:`lvmdiag.resplit.assign`), writes every split in the input's form into a
temporary directory beside ``out_dir``, reads the outputs back to check every guarantee
(:mod:`lvmdiag.resplit.verify`), writes ``manifest.json`` and ``resplit_report.md``, and only then
renames the directory into place. An interrupted run leaves ``out_dir`` absent (or, with ``force``,
the previous complete output); inputs are only ever read.
"""

from __future__ import annotations

import os
import shutil
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from lvmdiag.data.sequences import SequenceSet
from lvmdiag.errors import InputError, LvmdiagWarning
from lvmdiag.resplit.assign import Assignment, _ratios_iv, assign_groups
from lvmdiag.resplit.manifest import MANIFEST_FORMAT, build_manifest, dump_manifest
from lvmdiag.resplit.pool import group_columns, group_inputs, load_inputs, merge_shared_vectors, merge_stats
from lvmdiag.resplit.strata import BUILTIN_STRATA, Strata, article_statistics, build_strata
from lvmdiag.resplit.verify import GuaranteeError, Verification, block_hashes, verify_outputs
from lvmdiag.resplit.writing import (
    OUTPUT_FORMATS,
    maybe_sleep,
    move_into_place,
    npz_form_for,
    output_form,
    output_name,
    plain_extra_keys,
    pooled_subset,
    remove_stale_tmp,
    tmp_dir_for,
    write_npy_dir,
    write_parquet_split,
)
from lvmdiag.results import Result, md_table

ProgressCallback = Callable[[int, int], None]

__all__ = ["ResplitResult", "resplit"]

_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass(frozen=True)
class ResplitResult(Result):
    """What :func:`resplit` wrote and the evidence that it is right.

    Attributes
    ----------
    out_dir : the output directory (complete: written, verified, renamed into place)
    files : split name -> output path (relative to ``out_dir``)
    fmt : the on-disk form written, as read back (the inputs' form; article stores are written as
        windows in the rebuilt form and two-split inputs as single-split files, which this says)
    names, ratios : split names and target window shares
    achieved : window share per split, read back from disk
    tolerance : stated bound on |achieved - ratio| (largest article / total windows)
    n_windows : windows per split
    n_articles : articles per split
    group_method : how windows were grouped ("given", "recovered", "key:<name>") and merges made
    strata : the strata used
    assignment : per-article assignment with per-stratum shares
    before : input name -> window share of each input file (the old split)
    verification : every guarantee as checked on disk
    report : the markdown report (also written as resplit_report.md)
    """

    out_dir: str
    files: dict[str, str]
    fmt: str
    names: tuple[str, ...]
    ratios: tuple[float, ...]
    achieved: tuple[float, ...]
    tolerance: float
    n_windows: tuple[int, ...]
    n_articles: tuple[int, ...]
    group_method: str
    strata: Strata
    assignment: Assignment
    before: dict[str, float]
    verification: Verification
    report: str

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        # per-article arrays live in manifest.json; keep the JSON summary small
        d["assignment"] = {"max_deviation": self.assignment.max_deviation, "max_stratum_deviation": self.assignment.max_stratum_deviation}
        d["strata"] = {"labels": list(self.strata.labels), "variables": list(self.strata.variables), "bins": list(self.strata.bins)}
        return d

    def to_markdown(self) -> str:
        return self.report

    def summary_markdown(self) -> str:
        """A short summary for the terminal: shares, tolerance, guarantees and where the report is."""
        rows = [
            [n, w, a, f"{100 * r:.2f}%", f"{100 * x:.2f}%"]
            for n, w, a, r, x in zip(self.names, self.n_windows, self.n_articles, self.ratios, self.achieved)
        ]
        ok = "all guarantees PASS" if self.verification.passed else "GUARANTEE FAILED"
        return (
            f"# Resplit written to {self.out_dir} ({self.fmt}, grouped {self.group_method})\n\n"
            + md_table(["split", "windows", "articles", "target", "achieved"], rows)
            + f"\n\nTolerance {self.tolerance:.4f}; {ok} (read back from disk). "
            f"Details: {Path(self.out_dir) / 'resplit_report.md'}, manifest: {Path(self.out_dir) / 'manifest.json'}.\n"
        )


# ---------------------------------------------------------------------------------------------
# validation


def default_split_names(n: int) -> tuple[str, ...]:
    """Split names for ``n`` ratios: train, val, ood, then split3, split4, ..."""
    return ("train", "val", "ood", *(f"split{i}" for i in range(3, n)))[:n]


def _resplit_iv(
    inputs: Sequence[str | os.PathLike[str]],
    ratios: Sequence[float],
    names: Sequence[str] | None,
    stratify: Sequence[str],
    out_dir: str | os.PathLike[str],
    force: bool,
    k: int,
    n_bins: int = 4,
    min_articles: int | None = None,
    block_rows: int = 4096,
    n_resamples: int = 500,
    seed: int = 0,
) -> tuple[list[Path], np.ndarray, tuple[str, ...], tuple[str, ...], Path]:
    """Validate every argument of :func:`resplit` once; return normalised values."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    paths = [Path(p) for p in inputs]
    if not paths:
        raise InputError("resplit needs at least one input file.")
    seen: dict[Path, Path] = {}
    for p in paths:
        if not p.exists():
            raise InputError(f"{p} does not exist; check the path.")
        if p.resolve() in seen:
            # pooling a file twice would double every window of it (and pass every check)
            raise InputError(f"{p} is given twice (also as {seen[p.resolve()]}); give each input once.")
        seen[p.resolve()] = p
    r = _ratios_iv(ratios)
    names = default_split_names(r.size) if names is None else tuple(str(n) for n in names)
    if len(names) != r.size:
        raise InputError(f"give one split name per ratio: {r.size} ratios but names {list(names)}.")
    if len(set(names)) != len(names):
        raise InputError(f"split names must be distinct; got {list(names)}.")
    for n in names:
        if not n or not set(n) <= _NAME_OK or n.startswith(".") or n in ("manifest", "resplit_report"):
            raise InputError(f"split name {n!r} cannot be used as a file name; use letters, digits, '_', '-' or '.'.")
    if isinstance(stratify, str):
        stratify = [s for s in stratify.split(",") if s]
    stratify = tuple(s.strip() for s in stratify if s.strip() and s.strip() != "none")
    if len(set(stratify)) != len(stratify):
        raise InputError(f"stratification variables repeat: {list(stratify)}.")
    if k < 1:
        raise InputError(f"window length k must be >= 1; got {k}.")
    for what, value in (("--bins", n_bins), ("--block-rows", block_rows), ("n_resamples", n_resamples),
                        ("min_articles", 1 if min_articles is None else min_articles)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"{what} must be a whole number >= 1; got {value!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"--seed must be a whole number >= 0; got {seed!r}.")
    out = Path(out_dir)
    out_abs = out.resolve()
    for p in paths:
        pa = p.resolve()
        if pa == out_abs or out_abs in pa.parents:
            raise InputError(
                f"--out {out} holds the input {p}; choose an output directory outside the inputs "
                "(inputs are never overwritten)."
            )
        if pa in out_abs.parents:
            raise InputError(f"--out {out} lies inside the input {p}; choose another output directory.")
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is a file; give a directory path.")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise InputError(f"--out {out} is not empty; choose a new directory or pass --force to replace it.")
        if not _is_resplit_output(out):
            # --force replaces the whole directory: only ever an earlier resplit output, never e.g. a home directory
            raise InputError(f"--out {out} is not empty and holds no manifest.json of an earlier resplit, so --force "
                             "will not replace it; choose a new directory.")
    return paths, r, names, stratify, out


def _is_resplit_output(out: Path) -> bool:
    """True when ``out`` holds the ``manifest.json`` that :func:`resplit` writes."""
    import json

    try:
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == MANIFEST_FORMAT


# ---------------------------------------------------------------------------------------------
# the one call


def resplit(
    inputs: Sequence[str | os.PathLike[str]] | str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str],
    by: str = "article",
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    names: Sequence[str] | None = None,
    stratify: Sequence[str] | str = ("length", "delta"),
    seed: int = 0,
    force: bool = False,
    k: int = 5,
    allow_pickle: bool = False,
    n_bins: int = 4,
    min_articles: int | None = None,
    analyses: bool = True,
    n_resamples: int = 500,
    block_rows: int = 4096,
    progress: ProgressCallback | None = None,
    out_format: str | None = None,
) -> ResplitResult:
    """Pool ``inputs``, split them by whole article (or ``by`` key) into stratified splits, write and verify.

    Parameters
    ----------
    inputs : sequence files (any form :func:`lvmdiag.data.readers.load_sequences` reads; a two-split
        file contributes both splits) or ``.npy`` directories; all in one form
    out_dir : output directory; refused when non-empty unless ``force`` (earlier outputs only); never an
        input or inside one
    by : "article" (given or recovered article ids) or a per-window column / metadata key
    ratios : target share of windows per split (positive, summing to 1)
    names : one name per split (output files are ``<name>.npz`` or ``<name>/`` for .npy directories);
        default train, val, ood, split3, ... for as many splits as ``ratios`` has
    stratify : per-article variables to balance: "length", "delta", "topic" and/or metadata keys
        ("none" or empty for no stratification)
    seed : fixes tie-breaking, k-means and report resampling: same seed, byte-identical outputs
    force : replace a non-empty ``out_dir`` that holds an earlier resplit output (its ``manifest.json``);
        any other non-empty directory is refused
    k : window length for article-store inputs
    allow_pickle : read object arrays (Wikipedia metadata); unpickling can run code
    n_bins : bins per stratification variable (reduced automatically for few articles)
    min_articles : strata with fewer articles are pooled (default ceil(2 / min(ratios)))
    analyses : run the bias / divergence / leakage comparison for the report
    n_resamples : bootstrap/permutation resamples for the report's analyses
    block_rows : rows per streamed block (bounds memory)
    progress : optional ``callback(done, total)`` over all streamed rows
    out_format : "npz", "npy" (a directory of .npy files per split) or "parquet" (one Parquet file
        per split, fixed-size row groups, deterministic bytes); default the inputs' own kind (Parquet
        for Parquet / Arrow / ``datasets`` inputs, .npz for safetensors)

    Returns
    -------
    ResplitResult
        out_dir, files, fmt, names, ratios, achieved (read back), tolerance, n_windows, n_articles,
        group_method, strata, assignment, before, verification, report.

    Raises
    ------
    InputError
        for bad arguments or inputs (before anything is written).
    GuaranteeError
        when a guarantee fails on the read-back outputs (nothing is moved into ``out_dir``).
    """
    if Path(out_dir).parent.is_dir():
        remove_stale_tmp(Path(out_dir))  # before validation: a restored old output counts as "not empty"
    paths, r, names, stratify, out = _resplit_iv(inputs, ratios, names, stratify, out_dir, force, k, n_bins,
                                                 min_articles, block_rows, n_resamples, seed)
    if out_format is not None and out_format not in OUTPUT_FORMATS:
        raise InputError(f"output format must be one of {', '.join(OUTPUT_FORMATS)}; got {out_format!r}.")
    if min_articles is None:
        min_articles = int(np.ceil(2.0 / r.min()))
    in_names, sets = load_inputs(paths, k, allow_pickle)
    fmts = sorted({s.fmt for s in sets})
    if len(fmts) > 1:
        raise InputError(
            f"the inputs are in different forms ({', '.join(fmts)}); resplit writes the inputs' own form, "
            "so give files of one form (convert the others first)."
        )
    fmt = fmts[0]
    kinds = {(s.attrs.get("columnar") or {}).get("kind") for s in sets}
    out_form = output_form(fmt, out_format, kinds.pop() if len(kinds) == 1 else None)
    pooled = group_inputs(in_names, sets, paths, by)
    n_total = sum(s.n for s in sets)
    if n_total == 0:
        raise InputError("the inputs hold no windows.")
    user_cols = [v for v in stratify if v not in BUILTIN_STRATA]

    # progress over: one scan pass, one write pass, one verification pass (+ analyses)
    total_work = 3 * n_total
    done = [0]

    def tick(rows: int) -> None:
        done[0] += rows
        if progress is not None:
            progress(min(done[0], total_work), total_work)

    # ---- one streaming pass: content hashes (for merging and verification) + per-article sums
    hashes = {}

    def on_block(i: int, start: int, ctx: np.ndarray, tgt: np.ndarray) -> None:
        hashes.setdefault(i, []).append(block_hashes(ctx, tgt))
        tick(ctx.shape[0])

    pre_stats = article_statistics(
        sets, pooled.labels, pooled.n_groups, delta=True, topic="topic" in stratify,
        block_rows=block_rows, rng=seed, on_block=on_block,
    )
    window_h = [np.concatenate([b[0] for b in hashes[i]]) if i in hashes else np.empty(0, np.uint64) for i in range(len(sets))]
    chunk_h = [np.concatenate([b[1] for b in hashes[i]]) if i in hashes else np.empty((0, s.k + 1), np.uint64) for i, s in enumerate(sets)]
    chunk_ok = [np.concatenate([b[2] for b in hashes[i]]) if i in hashes else np.empty((0, s.k + 1), bool) for i, s in enumerate(sets)]
    del hashes

    # ---- merge groups that share a chunk vector, then per-article statistics of merged groups
    remap, n_merged = merge_shared_vectors(pooled.labels, chunk_h, chunk_ok, pooled.n_groups)
    del chunk_ok
    labels = [remap[lab] for lab in pooled.labels]
    n_groups = int(remap.max()) + 1 if remap.size else 0
    stats = merge_stats(pre_stats, remap, n_groups)
    if user_cols:
        stats = replace(stats, columns=group_columns(sets, labels, n_groups, user_cols))
    strata = build_strata(stats, stratify, n_bins=n_bins, min_articles=min_articles, rng=seed)
    assignment = assign_groups(stats.n_windows, r, strata.codes, rng=seed)
    counts = np.bincount(assignment.split_of_group, weights=stats.n_windows, minlength=r.size)
    if np.any(counts == 0):
        # an empty split cannot be written in any form (the readers refuse N = 0)
        empty = [names[j] for j in np.flatnonzero(counts == 0)]
        raise InputError(
            f"split(s) {', '.join(empty)} would get no article: {n_total} windows in {n_groups} articles "
            f"(largest {int(stats.n_windows.max())} windows) cannot fill ratios {r.tolist()}; raise the smallest "
            "ratio or give more data."
        )
    group_method = pooled.group_method + (f" + {n_merged} merged (shared chunk vectors)" if n_merged else "")

    # ---- plan rows per split (input order preserved inside each split)
    row_split = [assignment.split_of_group[lab] for lab in labels]
    plan = {name: [np.flatnonzero(rs == s) for rs in row_split] for s, name in enumerate(names)}
    expected = {name: np.concatenate([wh[rows] for wh, rows in zip(window_h, plan[name])]) for name in names}
    groups_per_split = {name: np.flatnonzero(assignment.split_of_group == s) for s, name in enumerate(names)}
    labels_per_split = {name: np.concatenate([lab[rows] for lab, rows in zip(labels, plan[name])]) for name in names}

    # ---- write into a temporary directory beside out_dir
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_dir_for(out)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        with _warnings_named_for(tmp, out):
            extra_keys = sorted(set.intersection(*(set(s.extras) for s in sets))) if sets else []
            dropped = sorted(set().union(*(set(s.extras) for s in sets)) - set(extra_keys))
            if dropped:
                warnings.warn(
                    f"per-window arrays {', '.join(dropped)} are not in every input, so the outputs do not carry them.",
                    LvmdiagWarning, stacklevel=2,
                )
            with_ids = all(s.article_ids is not None for s in sets)
            if out_form in ("npy_dir", "parquet"):
                extra_keys, lost = plain_extra_keys(sets, extra_keys, numeric_2d=out_form == "parquet")
                if lost:
                    warnings.warn(
                        f"per-window arrays {', '.join(lost)} cannot be stored in {out_form} outputs, so they are not "
                        "written (write .npz outputs to keep them).", LvmdiagWarning, stacklevel=2,
                    )
            files = {}
            for name in names:
                dest = tmp / output_name(out_form, name)
                if out_form == "npy_dir":
                    write_npy_dir(dest, sets, plan[name], with_ids, extra_keys, block_rows, tick)
                elif out_form == "parquet":
                    write_parquet_split(dest, sets, plan[name], with_ids, extra_keys, block_rows, tick)
                else:
                    from lvmdiag.data.writers import save_sequences

                    save_sequences(pooled_subset(sets, plan[name], name, extra_keys), dest, fmt=npz_form_for(fmt))
                    tick(int(sum(p.size for p in plan[name])))
                files[name] = dest.name
                maybe_sleep()

            # ---- read back and verify every guarantee
            outputs = _read_outputs(tmp, files, fmt, k, allow_pickle)
            verification = verify_outputs(
                outputs, expected, r, assignment.tolerance, groups_per_split, block_rows=max(block_rows // 2, 1),
                check_ids=by == "article", progress=tick,
            )
            if not verification.passed:
                failed = "; ".join(c.to_markdown() for c in verification.checks if not c.passed)
                raise GuaranteeError(f"resplit guarantee failed on the written files, nothing was kept: {failed}")

            # the form on disk, as read back: an article store is written as windows (rebuilt form), one
            # split of a two-split file as a single-split file
            written = outputs[names[0]].fmt
            form = written if written == fmt else f"{written} (from {fmt} inputs)"
            before = {nm: s.n / n_total for nm, s in zip(in_names, sets)}
            # ---- report and manifest
            from lvmdiag.resplit.report import render_report

            report = render_report(
                names=names, ratios=tuple(float(x) for x in r), assignment=assignment, strata=strata,
                verification=verification, before=before, in_sets=dict(zip(in_names, sets)),
                in_labels=dict(zip(in_names, labels)), outputs=outputs, out_labels=labels_per_split,
                group_method=group_method, form=form, stats=stats, seed=seed, analyses=analyses,
                n_resamples=n_resamples, block_rows=block_rows,
            )
            (tmp / "resplit_report.md").write_text(report, encoding="utf-8")
            maybe_sleep()
            manifest = build_manifest(
                paths, in_names, sets, by, r, names, stratify, seed, k, n_bins, min_articles, written, files,
                group_method, pooled.group_note, strata, assignment, verification, labels, stats,
            )
            (tmp / "manifest.json").write_text(dump_manifest(manifest), encoding="utf-8")
            for f in sorted(tmp.rglob("*")):
                if f.is_file():
                    with open(f, "rb+") as fh:
                        os.fsync(fh.fileno())
            del outputs
            move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    n_articles = tuple(int(g.size) for g in groups_per_split.values())
    return ResplitResult(
        out_dir=str(out),
        files=files,
        fmt=form,
        names=names,
        ratios=tuple(float(x) for x in r),
        achieved=verification.achieved,
        tolerance=assignment.tolerance,
        n_windows=verification.n_windows,
        n_articles=n_articles,
        group_method=group_method,
        strata=strata,
        assignment=assignment,
        before=before,
        verification=verification,
        report=report,
    )


def _read_outputs(tmp: Path, files: dict[str, str], fmt: str, k: int, allow_pickle: bool) -> dict[str, SequenceSet]:
    from lvmdiag.data.readers import load_sequences

    # name outputs by their path inside out_dir: the temporary directory's name must not reach the report
    return {
        name: replace(load_sequences(tmp / f, split=None, k=k, allow_pickle=allow_pickle), source=f, split=name)
        for name, f in files.items()
    }


@contextmanager
def _warnings_named_for(tmp: Path, out: Path) -> Iterator[None]:
    """Re-issue warnings raised while writing / reading back in ``tmp`` with ``out`` in place of ``tmp``:
    the temporary directory is gone when the user reads them."""
    pending: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                yield
            finally:
                pending = list(caught)
    finally:  # also when the run fails: the warnings may say why
        for w in pending:
            warnings.warn(str(w.message).replace(str(tmp), str(out)), w.category, stacklevel=3)



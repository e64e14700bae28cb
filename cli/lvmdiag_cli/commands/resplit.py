"""`lvmdiag resplit`: article-disjoint, stratified re-splitting with guarantees checked on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lvmdiag.errors import InputError
from lvmdiag_cli._common import (
    HtmlOption,
    QuietOption,
    SeedOption,
    V,
    check_output_dir,
    check_outputs,
    resolve_k,
    emit,
    emit_html,
    handle_errors,
    progress_bar,
    ranged,
)


def _floats(text: str, what: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise InputError(f"{what} must be comma-separated numbers, e.g. 0.8,0.1,0.1; got {text!r}.") from None


def _words(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def resplit_cmd(
    inputs: Annotated[list[Path], typer.Argument(help="Sequence files, two-split files, article stores or .npy directories (one form).")],
    out: Annotated[Path, typer.Option("--out", help="Output directory: new or empty (or an earlier resplit output, with --force).")],
    by: Annotated[str, typer.Option("--by", help="'article', or a per-window column / metadata key to group by.")] = "article",
    ratios: Annotated[str, typer.Option("--ratios", help="Window share per split, summing to 1.")] = "0.8,0.1,0.1",
    names: Annotated[Optional[str], typer.Option("--names", help="Split names, one per ratio (default: train,val "
                                                   "for 2 ratios, train,val,ood for 3, then split3, split4, ...).")] = None,
    stratify: Annotated[str, typer.Option("--stratify", help="length, delta, topic and/or metadata keys; 'none' to switch off.")] = "length,delta",
    seed: SeedOption = 0,
    force: Annotated[bool, typer.Option("--force", help="Replace an earlier resplit output in --out (one with its "
                                                   "manifest.json); other non-empty directories are never replaced.")] = False,
    k: Annotated[Optional[int], ranged(V.COUNT, "--k", help="Window length for article-store inputs (default 5). A "
                                       "window file keeps its own K: an explicit --k that differs from it is an error.")] = None,
    n_bins: Annotated[int, ranged(V.COUNT, "--bins", help="Bins per stratification variable.")] = 4,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Read object arrays (metadata; can run code from the file).")] = False,
    analyses: Annotated[bool, typer.Option("--analyses/--no-analyses", help="Bias, divergence and leakage sections in the report.")] = True,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the result summary as JSON ('-' = stdout).")] = None,
    html: HtmlOption = None,
    no_progress: QuietOption = False,
    out_format: Annotated[Optional[str], typer.Option("--format", help="Output files: npz, npy (.npy directories) or parquet; "
                                                      "default the inputs' own kind.")] = None,
) -> None:
    """Re-split INPUTS by whole article into stratified splits; writes the splits, manifest.json, resplit_report.md."""
    with handle_errors():
        from lvmdiag.resplit import resplit

        check_output_dir("--out", out)
        check_outputs({"--json": json_path, "--html": html}, list(inputs))
        k = resolve_k(k, [("input", p) for p in inputs])
        split_names = None if names is None else _words(names)
        if json_path is not None and str(json_path) != "-":
            ratio_values = _floats(ratios, "--ratios")
            from lvmdiag.resplit.dataset import default_split_names

            shown = split_names or default_split_names(len(ratio_values))
            written = {"manifest.json", "resplit_report.md"} | {f"{n}{ext}" for n in shown for ext in ("", ".npz", ".parquet")}
            if json_path.resolve().parent == out.resolve() and json_path.name in written:
                raise InputError(f"--json {json_path} would overwrite the resplit's own {json_path.name}; choose another path.")
        with progress_bar("resplit", enabled=not no_progress) as bar:
            result = resplit(
                list(inputs), out_dir=out, by=by, ratios=_floats(ratios, "--ratios"), names=split_names,
                stratify=_words(stratify), seed=seed, force=force, k=k, n_bins=n_bins,
                allow_pickle=allow_pickle, analyses=analyses, progress=bar, out_format=out_format,
            )
        emit(result.summary_markdown(), None, result.to_dict(), json_path)
        emit_html(result, html, list(inputs))


def register(app: typer.Typer) -> None:
    app.command("resplit")(resplit_cmd)

"""`lvmdiag bias`: position profile, Δ, lag profile and trivial predictors per split, and val − train differences."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lvmdiag_cli._common import emit, handle_errors, progress_bar, refuse_overwrite_input


def bias_cmd(
    train: Annotated[Path, typer.Option("--train", help="Training sequences (.npz, .npy dir or article store).")],
    val: Annotated[Optional[Path], typer.Option("--val", help="Validation sequences (may be the same two-split file).")] = None,
    ood: Annotated[Optional[Path], typer.Option("--ood", help="Out-of-distribution sequences, also compared with train.")] = None,
    k: Annotated[int, typer.Option("--k", help="Window length K when reading an article store.")] = 5,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Read object arrays (can run code from the file).")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the markdown report here (the PNG goes beside it).")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the result as JSON ('-' = stdout).")] = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the PNG here (default: beside --out, same stem).")] = None,
    n_resamples: Annotated[int, typer.Option("--n-resamples", help="Article bootstrap resamples and permutations.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed for bootstraps and permutations.")] = 0,
    block_rows: Annotated[int, typer.Option("--block-rows", help="Windows read per block (memory bound).")] = 8192,
    direction: Annotated[bool, typer.Option("--direction/--no-direction",
                                            help="Add the arrow-of-time test (Δ alone cannot see direction).")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Temporal bias with article-cluster bootstrap CIs; with --val/--ood, differences from train with permutation p-values; plus a direction test."""
    with handle_errors():
        from lvmdiag.analyzers.bias_report import analyze_bias_report
        from lvmdiag.data.readers import load_sequences

        inputs = [train, val, ood]
        png = plot if plot is not None else (out.with_suffix(".png") if out is not None else None)
        for output in (out, json_path, png):
            refuse_overwrite_input(output, inputs)
        splits = {name: load_sequences(p, split=name, k=k, allow_pickle=allow_pickle)
                  for name, p in (("train", train), ("val", val), ("ood", ood)) if p is not None}
        with progress_bar("bias", enabled=not quiet) as bar:
            report = analyze_bias_report(splits, direction=direction, n_resamples=n_resamples, rng=seed,
                                         block_rows=block_rows, progress=bar)
        markdown = report.to_markdown()
        if png is not None:
            from lvmdiag.plots.bias import plot_bias

            plot_bias(report.bias, png)
            if out is not None:
                rel = png.name if png.parent.resolve() == out.parent.resolve() else str(png)
                markdown += f"\n![position and lag profiles]({rel})\n"
        emit(markdown, out, report.to_dict(), json_path)


def register(app: typer.Typer) -> None:
    app.command("bias")(bias_cmd)

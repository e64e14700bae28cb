"""`lvmdiag diverge`: is val (and ood) distributed like train? Tests that permute whole articles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lvmdiag_cli._common import emit, handle_errors, progress_bar, refuse_overwrite_input


def diverge_cmd(
    train: Annotated[Path, typer.Option("--train", help="Training sequences (.npz, .npy dir or article store).")],
    val: Annotated[Path, typer.Option("--val", help="Validation sequences (may be the same two-split file).")],
    ood: Annotated[Optional[Path], typer.Option("--ood", help="Out-of-distribution sequences, also compared with train.")] = None,
    k: Annotated[int, typer.Option("--k", help="Window length K when reading an article store.")] = 5,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Read object arrays (can run code from the file).")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the markdown report here (the PNG goes beside it).")] = None,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Write the result as JSON ('-' = stdout).")] = None,
    n_permutations: Annotated[int, typer.Option("--n-permutations", help="Whole-article permutations per test.")] = 200,
    n_bootstrap: Annotated[int, typer.Option("--n-bootstrap", help="Article-bootstrap replicates per interval.")] = 200,
    rff_features: Annotated[int, typer.Option("--rff-features", help="Random Fourier features for the RBF MMD.")] = 512,
    seed: Annotated[int, typer.Option("--seed", help="Seed for features, folds, permutations and bootstraps.")] = 0,
    block_rows: Annotated[int, typer.Option("--block-rows", help="Windows read per block (memory bound).")] = 2048,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Mean shift, RBF MMD and a by-article classifier on chunks and targets; KS/Wasserstein on per-window statistics."""
    with handle_errors():
        from lvmdiag.analyzers.divergence import analyze_divergence
        from lvmdiag.data.readers import load_sequences

        png = out.with_name(out.stem + "_divergence.png") if out is not None else None
        for output in (out, json_path, png):
            refuse_overwrite_input(output, [train, val, ood])
        splits = {name: load_sequences(p, split=name, k=k, allow_pickle=allow_pickle)
                  for name, p in (("train", train), ("val", val), ("ood", ood)) if p is not None}
        with progress_bar("diverge", enabled=not quiet) as bar:
            result = analyze_divergence(splits, n_permutations=n_permutations, n_bootstrap=n_bootstrap,
                                        rff_features=rff_features, rng=seed, block_rows=block_rows, progress=bar)
        markdown = result.to_markdown()
        if png is not None:
            from lvmdiag.plots.divergence import plot_divergence

            plot_divergence(result, png)
            markdown += f"\n![divergence tests and Δ distributions]({png.name})\n"
        emit(markdown, out, result.to_dict(), json_path)


def register(app: typer.Typer) -> None:
    app.command("diverge")(diverge_cmd)

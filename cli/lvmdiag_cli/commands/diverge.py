"""`lvmdiag diverge`: is val (and ood) distributed like train? Tests that permute whole articles."""

from __future__ import annotations

from typing import Annotated

import typer

from lvmdiag_cli._common import (
    HtmlOption,
    AllowPickleOption,
    JsonOption,
    KOption,
    OodOption,
    OutOption,
    QuietOption,
    TrainOption,
    ValOption,
    attach_plot,
    emit,
    emit_html,
    handle_errors,
    load_named_splits,
    progress_bar,
    refuse_overwrite_input,
    sibling_png,
)


def diverge_cmd(
    train: TrainOption,
    val: ValOption,
    ood: OodOption = None,
    k: KOption = 5,
    allow_pickle: AllowPickleOption = False,
    out: OutOption = None,
    json_path: JsonOption = None,
    html: HtmlOption = None,
    n_permutations: Annotated[str, typer.Option("--n-permutations", metavar="N|auto", help="Cap on whole-article permutations per test, or auto (each test stops once it cannot reach alpha; auto lets a lone effect reach alpha/m in its family).")] = "auto",
    n_bootstrap: Annotated[int, typer.Option("--n-bootstrap", help="Article-bootstrap replicates per interval.")] = 200,
    rff_features: Annotated[int, typer.Option("--rff-features", help="Random Fourier features for the RBF MMD.")] = 512,
    seed: Annotated[int, typer.Option("--seed", help="Seed for features, folds, permutations and bootstraps.")] = 0,
    block_rows: Annotated[int, typer.Option("--block-rows", help="Windows read per block (memory bound).")] = 2048,
    quiet: QuietOption = False,
) -> None:
    """Mean shift, RBF MMD and a by-article classifier on chunks and targets; KS/Wasserstein on per-window statistics."""
    with handle_errors():
        from lvmdiag.analyzers.divergence import analyze_divergence

        png = sibling_png(out, "divergence")
        for output in (out, json_path, png):
            refuse_overwrite_input(output, [train, val, ood])
        splits = load_named_splits(train, val, ood, k, allow_pickle)
        with progress_bar("diverge", enabled=not quiet) as bar:
            result = analyze_divergence(splits, n_permutations=n_permutations, n_bootstrap=n_bootstrap,
                                        rff_features=rff_features, rng=seed, block_rows=block_rows, progress=bar)
        markdown = result.to_markdown()
        if png is not None:
            from lvmdiag.plots.divergence import plot_divergence

            markdown = attach_plot(markdown, png, out, "divergence tests and Δ distributions",
                                   lambda p: plot_divergence(result, p))
        emit(markdown, out, result.to_dict(), json_path)
        emit_html(result, html, [train, val, ood])


def register(app: typer.Typer) -> None:
    app.command("diverge")(diverge_cmd)

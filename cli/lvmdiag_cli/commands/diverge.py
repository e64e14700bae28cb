"""`lvmdiag diverge`: is val (and ood) distributed like train? Tests that permute whole articles."""

from __future__ import annotations

from typing import Annotated

import typer

from lvmdiag_cli._common import (
    HtmlOption,
    AllowPickleOption,
    BlockRowsOption,
    JsonOption,
    KOption,
    NBootstrapOption,
    NPermutationsOption,
    OodOption,
    OutOption,
    QuietOption,
    SeedOption,
    TrainOption,
    V,
    ValOption,
    attach_plot,
    check_outputs,
    emit,
    emit_html,
    handle_errors,
    load_named_splits,
    output_set,
    progress_bar,
    ranged,
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
    n_permutations: NPermutationsOption = "auto",
    n_bootstrap: NBootstrapOption = 200,
    rff_features: Annotated[int, ranged(V.COUNT, "--rff-features", help="Random Fourier features for the RBF MMD.")] = 512,
    seed: SeedOption = 0,
    block_rows: BlockRowsOption = 2048,
    quiet: QuietOption = False,
) -> None:
    """Mean shift, RBF MMD and a by-article classifier on chunks and targets; KS/Wasserstein on per-window statistics."""
    with handle_errors():
        from lvmdiag.analyzers.divergence import analyze_divergence

        png = sibling_png(out, "divergence")
        check_outputs({"--out": out, "--json": json_path, "--html": html, "PNG": png}, [train, val, ood])
        splits = load_named_splits(train, val, ood, k, allow_pickle)
        with progress_bar("diverge", enabled=not quiet) as bar:
            result = analyze_divergence(splits, n_permutations=n_permutations, n_bootstrap=n_bootstrap,
                                        rff_features=rff_features, rng=seed, block_rows=block_rows, progress=bar)
        markdown = result.to_markdown()
        with output_set() as outputs:
            if png is not None:
                from lvmdiag.plots.divergence import plot_divergence

                markdown = attach_plot(markdown, png, out, "divergence tests and Δ distributions",
                                       lambda p: plot_divergence(result, outputs.stage(p)))
            emit_html(result, html, [train, val, ood], outputs)
            emit(markdown, out, result.to_dict(), json_path, outputs)


def register(app: typer.Typer) -> None:
    app.command("diverge")(diverge_cmd)

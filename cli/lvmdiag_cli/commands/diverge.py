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
    CommandEngineOption,
    SchedulerOption,
    check_engine,
    V,
    ValOption,
    attach_plot,
    check_outputs,
    resolve_k,
    emit,
    emit_html,
    handle_errors,
    output_set,
    progress_bar,
    ranged,
    sibling_png,
)


def diverge_cmd(
    train: TrainOption,
    val: ValOption,
    ood: OodOption = None,
    k: KOption = None,
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
    engine: CommandEngineOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Mean shift, RBF MMD and a by-article classifier on chunks and targets; KS/Wasserstein on per-window statistics."""
    with handle_errors():
        from lvmdiag.engine.commands import engine_line, run_diverge, with_engine_dict, with_engine_line

        check_engine(engine, scheduler)
        png = sibling_png(out, "divergence")
        check_outputs({"--out": out, "--json": json_path, "--html": html, "PNG": png}, [train, val, ood])
        k = resolve_k(k, {"--train": train, "--val": val, "--ood": ood})
        with progress_bar("diverge", enabled=not quiet) as bar:
            result, run = run_diverge({"train": train, "val": val, "ood": ood}, k=k, allow_pickle=allow_pickle,
                                      n_permutations=n_permutations, n_bootstrap=n_bootstrap,
                                      rff_features=rff_features, seed=seed, block_rows=block_rows,
                                      engine=engine, scheduler=scheduler, progress=bar)
        markdown = with_engine_line(result.to_markdown(), run)
        with output_set() as outputs:
            if png is not None:
                from lvmdiag.plots.divergence import plot_divergence

                markdown = attach_plot(markdown, png, out, "divergence tests and Δ distributions",
                                       lambda p: plot_divergence(result, outputs.stage(p)))
            emit_html(result, html, [train, val, ood], outputs, note=engine_line(run) if run else "")
            emit(markdown, out, with_engine_dict(result.to_dict(), run), json_path, outputs)


def register(app: typer.Typer) -> None:
    app.command("diverge")(diverge_cmd)

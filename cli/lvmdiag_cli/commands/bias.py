"""`lvmdiag bias`: position profile, Δ, lag profile and trivial predictors per split, and val − train differences."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lvmdiag._atomic import is_special_file
from lvmdiag_cli._common import (
    HtmlOption,
    AllowPickleOption,
    BlockRowsOption,
    JsonOption,
    BiasKOption,
    NPermutationsOption,
    OodOption,
    OptionalValOption,
    OutOption,
    QuietOption,
    SeedOption,
    TrainOption,
    CommandEngineOption,
    SchedulerOption,
    check_engine,
    V,
    attach_plot,
    check_outputs,
    resolve_k,
    emit,
    emit_html,
    handle_errors,
    output_set,
    progress_bar,
    ranged,
)


def bias_cmd(
    train: TrainOption,
    val: OptionalValOption = None,
    ood: OodOption = None,
    k: BiasKOption = None,
    allow_pickle: AllowPickleOption = False,
    out: OutOption = None,
    json_path: JsonOption = None,
    html: HtmlOption = None,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the PNG here (default: beside --out, same stem).")] = None,
    n_resamples: Annotated[int, ranged(V.COUNT, "--n-resamples", help="Article bootstrap resamples per interval.")] = 1000,
    n_permutations: NPermutationsOption = "auto",
    seed: SeedOption = 0,
    block_rows: BlockRowsOption = 8192,
    direction: Annotated[bool, typer.Option("--direction/--no-direction",
                                            help="Add the arrow-of-time test (Δ alone cannot see direction).")] = True,
    quiet: QuietOption = False,
    engine: CommandEngineOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Temporal bias with article-cluster bootstrap CIs; with --val/--ood, differences from train with permutation p-values; plus a direction test."""
    with handle_errors():
        from lvmdiag.engine.commands import engine_line, run_bias, with_engine_dict, with_engine_line

        check_engine(engine, scheduler)
        inputs = [train, val, ood]
        png = plot if plot is not None else (out.with_suffix(".png") if out is not None and not is_special_file(out)
                                             else None)
        check_outputs({"--out": out, "--json": json_path, "--html": html, "--plot" if plot is not None else "PNG": png}, inputs)
        k = resolve_k(k, {"--train": train, "--val": val, "--ood": ood})
        with progress_bar("bias", enabled=not quiet) as bar:
            report, run = run_bias({"train": train, "val": val, "ood": ood}, k=k, allow_pickle=allow_pickle,
                                   direction=direction, n_resamples=n_resamples, n_permutations=n_permutations,
                                   seed=seed, block_rows=block_rows, engine=engine, scheduler=scheduler, progress=bar)
        markdown = with_engine_line(report.to_markdown(), run)
        with output_set() as outputs:
            if png is not None:
                from lvmdiag.plots.bias import plot_bias

                markdown = attach_plot(markdown, png, out, "position and lag profiles",
                                       lambda p: plot_bias(report.bias, outputs.stage(p)))
            emit_html(report, html, inputs, outputs, note=engine_line(run) if run else "")
            emit(markdown, out, with_engine_dict(report.to_dict(), run), json_path, outputs)


def register(app: typer.Typer) -> None:
    app.command("bias")(bias_cmd)

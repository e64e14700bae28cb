"""`lvmdiag leakage`: what val/OOD share with train (articles, chunks, whole windows, near-duplicates)."""

from __future__ import annotations


from typing import Annotated

import typer

from lvmdiag_cli._common import (
    HtmlOption,
    AllowPickleOption,
    BlockRowsOption,
    JsonOption,
    KOption,
    OodOption,
    OutOption,
    QuietOption,
    ThresholdOption,
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


def leakage_cmd(
    train: TrainOption,
    val: ValOption,
    ood: OodOption = None,
    threshold: ThresholdOption = 0.98,
    max_examples: Annotated[int, ranged(V.NONNEG_INT, "--max-examples", help="Examples listed per kind and split.")] = 10,
    k: KOption = None,
    block_rows: BlockRowsOption = 4096,
    allow_pickle: AllowPickleOption = False,
    out: OutOption = None,
    json_path: JsonOption = None,
    html: HtmlOption = None,
    no_progress: QuietOption = False,
    engine: CommandEngineOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Count the articles, chunk vectors, windows and near-duplicate chunks that val (and OOD) share with train."""
    with handle_errors():
        from lvmdiag.engine.commands import engine_line, run_leakage, with_engine_dict, with_engine_line

        check_engine(engine, scheduler)
        png = sibling_png(out, "leakage")
        check_outputs({"--out": out, "--json": json_path, "--html": html, "PNG": png}, [train, val, ood])
        k = resolve_k(k, {"--train": train, "--val": val, "--ood": ood})
        with progress_bar("leakage", enabled=not no_progress) as bar:
            result, run = run_leakage({"train": train, "val": val, "ood": ood}, k=k, allow_pickle=allow_pickle,
                                      threshold=threshold, max_examples=max_examples, block_rows=block_rows,
                                      engine=engine, scheduler=scheduler, progress=bar)
        markdown = with_engine_line(result.to_markdown(), run)
        with output_set() as outputs:
            if png is not None:
                from lvmdiag.plots.leakage import plot_leakage

                markdown = attach_plot(markdown, png, out, "leakage",
                                       lambda p: plot_leakage(result, outputs.stage(p)))
            emit_html(result, html, [train, val, ood], outputs, note=engine_line(run) if run else "")
            emit(markdown, out, with_engine_dict(result.to_dict(), run), json_path, outputs)


def register(app: typer.Typer) -> None:
    app.command("leakage")(leakage_cmd)

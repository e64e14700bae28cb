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


def leakage_cmd(
    train: TrainOption,
    val: ValOption,
    ood: OodOption = None,
    threshold: ThresholdOption = 0.98,
    max_examples: Annotated[int, ranged(V.NONNEG_INT, "--max-examples", help="Examples listed per kind and split.")] = 10,
    k: KOption = 5,
    block_rows: BlockRowsOption = 4096,
    allow_pickle: AllowPickleOption = False,
    out: OutOption = None,
    json_path: JsonOption = None,
    html: HtmlOption = None,
    no_progress: QuietOption = False,
) -> None:
    """Count the articles, chunk vectors, windows and near-duplicate chunks that val (and OOD) share with train."""
    with handle_errors():
        from lvmdiag.analyzers.leakage import analyze_leakage

        png = sibling_png(out, "leakage")
        check_outputs({"--out": out, "--json": json_path, "--html": html, "PNG": png}, [train, val, ood])
        splits = load_named_splits(train, val, ood, k, allow_pickle)
        with progress_bar("leakage", enabled=not no_progress) as bar:
            result = analyze_leakage(splits, threshold=threshold, max_examples=max_examples,
                                     block_rows=block_rows, progress=bar)
        markdown = result.to_markdown()
        with output_set() as outputs:
            if png is not None:
                from lvmdiag.plots.leakage import plot_leakage

                markdown = attach_plot(markdown, png, out, "leakage",
                                       lambda p: plot_leakage(result, outputs.stage(p)))
            emit_html(result, html, [train, val, ood], outputs)
            emit(markdown, out, result.to_dict(), json_path, outputs)


def register(app: typer.Typer) -> None:
    app.command("leakage")(leakage_cmd)

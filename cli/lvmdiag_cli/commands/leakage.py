"""`lvmdiag leakage`: what val/OOD share with train (articles, chunks, whole windows, near-duplicates)."""

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


def leakage_cmd(
    train: TrainOption,
    val: ValOption,
    ood: OodOption = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Cosine at or above which a chunk is a near-duplicate.")] = 0.98,
    max_examples: Annotated[int, typer.Option("--max-examples", help="Examples listed per kind and split.")] = 10,
    k: KOption = 5,
    block_rows: Annotated[int, typer.Option("--block-rows", help="Windows read per block (memory bound).")] = 4096,
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
        for output in (out, json_path, png):
            refuse_overwrite_input(output, [train, val, ood])
        splits = load_named_splits(train, val, ood, k, allow_pickle)
        with progress_bar("leakage", enabled=not no_progress) as bar:
            result = analyze_leakage(splits, threshold=threshold, max_examples=max_examples,
                                     block_rows=block_rows, progress=bar)
        markdown = result.to_markdown()
        if png is not None:
            from lvmdiag.plots.leakage import plot_leakage

            markdown = attach_plot(markdown, png, out, "leakage", lambda p: plot_leakage(result, p))
        emit(markdown, out, result.to_dict(), json_path)
        emit_html(result, html, [train, val, ood])


def register(app: typer.Typer) -> None:
    app.command("leakage")(leakage_cmd)

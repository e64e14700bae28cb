"""`lvmdiag direction`: can the data tell forward from reversed order, and does each split run the same way?"""

from __future__ import annotations

from typing import Annotated

import typer

from lvmdiag_cli._common import (
    HtmlOption,
    AllowPickleOption,
    JsonOption,
    KOption,
    OodOption,
    OptionalValOption,
    OutOption,
    QuietOption,
    TrainOption,
    attach_plot,
    emit,
    emit_html,
    handle_errors,
    load_named_splits,
    progress_bar,
    refuse_overwrite_input,
    sibling_png,
)


def direction_cmd(
    train: TrainOption,
    val: OptionalValOption = None,
    ood: OodOption = None,
    k: KOption = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed for folds, permutations and bootstraps.")] = 0,
    permutations: Annotated[str, typer.Option("--n-permutations", "--permutations", metavar="N|auto", help="Cap on article flips per test, or auto (each test stops once it cannot reach alpha; auto lets a lone effect reach alpha/m in its split's family).")] = "auto",
    max_windows: Annotated[int, typer.Option("--max-windows", help="At most this many windows per split feed the classifier.")] = 100_000,
    allow_pickle: AllowPickleOption = False,
    out: OutOption = None,
    json_path: JsonOption = None,
    html: HtmlOption = None,
    no_progress: QuietOption = False,
) -> None:
    """Direction classifier (true vs reversed order, CV by article), signed score vs train (the reference orientation), lag-matched offsets."""
    with handle_errors():
        from lvmdiag.analyzers.direction import analyze_direction

        png = sibling_png(out, "direction")
        for output in (out, json_path, png):
            refuse_overwrite_input(output, [train, val, ood])
        splits = load_named_splits(train, val, ood, k, allow_pickle)
        with progress_bar("direction", enabled=not no_progress) as bar:
            result = analyze_direction(splits, n_permutations=permutations, max_windows=max_windows,
                                       rng=seed, progress=bar)
        markdown = result.to_markdown()
        if png is not None:
            from lvmdiag.plots.direction import plot_direction

            markdown = attach_plot(markdown, png, out, "direction", lambda p: plot_direction(result, p))
        emit(markdown, out, result.to_dict(), json_path)
        emit_html(result, html, [train, val, ood])


def register(app: typer.Typer) -> None:
    app.command("direction")(direction_cmd)
